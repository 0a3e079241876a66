"""Recommendations for listeners (called by the platform's back end with a service key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from consentune.api.deps import Caller, Service
from consentune.types import Role

router = APIRouter(prefix="/v1", tags=["recommend"])


class RecommendationOut(BaseModel):
    track: str
    score: float
    source: str


@router.get("/users/{user_id}/recommendations", response_model=list[RecommendationOut])
def recommendations(
    user_id: str, service: Service, caller: Caller, n: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[RecommendationOut]:
    """Only tracks whose artists allow `recommend` right now; each impression is logged."""
    caller.require(Role.SERVICE, Role.ADMIN)
    recs = service.recommend.for_user(user_id, n=n, actor=caller.actor)
    return [RecommendationOut(track=r.track, score=r.score, source=r.source) for r in recs]
