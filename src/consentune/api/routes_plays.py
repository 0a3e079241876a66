"""Play events in batches, from the platform's playback pipeline."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from consentune.api.deps import Caller, Service
from consentune.api.schemas import PlayRows
from consentune.types import Role

router = APIRouter(prefix="/v1", tags=["plays"])


class PlaysIn(BaseModel):
    plays: PlayRows = Field(
        examples=[[{"user_id": "u1", "track_id": "trk_…", "played_at": "2026-11-27T10:00:00Z", "ms_played": 183000}]],
    )


class RowErrorOut(BaseModel):
    index: int
    error: str


class PlaysOut(BaseModel):
    imported: int
    rejected: list[RowErrorOut]
    duplicates: int = Field(0, description="of the imported rows, those already stored (a retried batch)")


@router.post("/plays", response_model=PlaysOut)
def add_plays(body: PlaysIn, service: Service, caller: Caller) -> PlaysOut:
    """Good rows are stored (one transaction; a retried batch stores nothing twice); bad rows by index."""
    caller.require(Role.SERVICE, Role.ADMIN)
    report = service.plays.import_records(body.plays)
    return PlaysOut(
        imported=report.imported,
        rejected=[RowErrorOut(index=e.line, error=e.message) for e in report.errors],
        duplicates=report.duplicates,
    )
