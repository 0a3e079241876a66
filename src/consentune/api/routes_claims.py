"""Claims: copies of an artist's track found by identification, their dispute and resolution."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from consentune.api.deps import Caller, Service
from consentune.api.schemas import MAX_INT
from consentune.auth import Principal
from consentune.claims import Claim, ClaimPolicy, ClaimStatus
from consentune.errors import AccessDenied
from consentune.service import Consentune
from consentune.types import ArtistId, Role

router = APIRouter(prefix="/v1", tags=["claims"])
ClaimId = Annotated[int, Path(ge=1, le=MAX_INT)]


class ClaimOut(BaseModel):
    id: int
    status: str
    copy_track_id: str
    copy_title: str
    copy_artist_id: str
    copy_artist: str
    original_track_id: str
    original_title: str
    original_artist_id: str
    original_artist: str
    partial: bool = Field(description="the copy re-uses a section, not the whole of either track")
    copy_start_s: float
    copy_end_s: float
    original_start_s: float
    original_end_s: float
    time_scale: float = Field(description="original seconds per copy second (1.04: the copy plays 4 % faster)")
    pitch_semitones: float
    score: float
    opened_at: datetime
    updated_at: datetime
    dispute_reason: str | None
    resolved_by: str | None


class DisputeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class ResolveIn(BaseModel):
    outcome: Literal["uphold", "release"]


class ClaimPolicyIO(BaseModel):
    policy: Literal["block", "hold", "allow"] = Field(
        description="copies of my tracks under a claim: never streamed (block), not streamed until the claim "
        "is resolved (hold, the default), or streamed and credited to me (allow)"
    )


def _as_artist(caller: Principal) -> ArtistId | None:
    """Artists act for themselves; admins as operators (None); other keys may not touch claims."""
    if caller.role is Role.ADMIN:
        return None
    if caller.role is Role.ARTIST and caller.artist_id is not None:
        return caller.artist_id
    raise AccessDenied("claims are for artists and operators", hint="use an artist or admin key")


def _out(service: Consentune, claims: list[Claim]) -> list[ClaimOut]:
    ids = {t for c in claims for t in (c.copy_track_id, c.original_track_id)}
    tracks = {t: found for t in ids if (found := service.store.get_track(t)) is not None}
    names = {a: service.catalog.artist(a).name for c in claims for a in (c.copy_artist_id, c.original_artist_id)}
    return [
        ClaimOut(
            id=c.id,
            status=c.status.value,
            copy_track_id=c.copy_track_id,
            copy_title=tracks[c.copy_track_id].title if c.copy_track_id in tracks else "",
            copy_artist_id=c.copy_artist_id,
            copy_artist=names[c.copy_artist_id],
            original_track_id=c.original_track_id,
            original_title=tracks[c.original_track_id].title if c.original_track_id in tracks else "",
            original_artist_id=c.original_artist_id,
            original_artist=names[c.original_artist_id],
            partial=c.partial,
            copy_start_s=c.copy_start_s,
            copy_end_s=c.copy_end_s,
            original_start_s=c.original_start_s,
            original_end_s=c.original_end_s,
            time_scale=c.time_scale,
            pitch_semitones=c.pitch_semitones,
            score=c.score,
            opened_at=c.opened_at,
            updated_at=c.updated_at,
            dispute_reason=c.dispute_reason,
            resolved_by=c.resolved_by,
        )
        for c in claims
    ]


@router.get("/claims", response_model=list[ClaimOut])
def list_claims(
    service: Service,
    caller: Caller,
    status: Annotated[Literal["open", "disputed", "upheld", "released"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> list[ClaimOut]:
    """Claims on my tracks, either side (an operator sees all), newest change first."""
    found = service.claims.claims(
        as_artist=_as_artist(caller), status=ClaimStatus(status) if status else None, limit=limit, offset=offset
    )
    return _out(service, found)


@router.get("/claims/{claim_id}", response_model=ClaimOut)
def get_claim(claim_id: ClaimId, service: Service, caller: Caller) -> ClaimOut:
    return _out(service, [service.claims.claim(claim_id, as_artist=_as_artist(caller))])[0]


@router.post("/claims/{claim_id}/dispute", response_model=ClaimOut)
def dispute_claim(claim_id: ClaimId, body: DisputeIn, service: Service, caller: Caller) -> ClaimOut:
    """The copy's uploader says why the claim is wrong; the original artist or an operator then resolves it."""
    claim = service.claims.dispute(claim_id, reason=body.reason, actor=caller.actor, as_artist=_as_artist(caller))
    return _out(service, [claim])[0]


@router.post("/claims/{claim_id}/resolve", response_model=ClaimOut)
def resolve_claim(claim_id: ClaimId, body: ResolveIn, service: Service, caller: Caller) -> ClaimOut:
    """Uphold (the copy stays governed by the original) or release (the copy is the uploader's again)."""
    claim = service.claims.resolve(claim_id, outcome=body.outcome, actor=caller.actor, as_artist=_as_artist(caller))
    return _out(service, [claim])[0]


@router.get("/me/claim-policy", response_model=ClaimPolicyIO)
def my_claim_policy(service: Service, caller: Caller) -> ClaimPolicyIO:
    artist = _as_artist(caller)
    if artist is None:
        raise AccessDenied("/v1/me/* needs an artist key", hint="use the artist's own key")
    return ClaimPolicyIO(policy=service.claims.policy_of(artist).value)


@router.put("/me/claim-policy", response_model=ClaimPolicyIO)
def set_my_claim_policy(body: ClaimPolicyIO, service: Service, caller: Caller) -> ClaimPolicyIO:
    artist = _as_artist(caller)
    if artist is None:
        raise AccessDenied("/v1/me/* needs an artist key", hint="use the artist's own key")
    service.claims.set_policy(artist, ClaimPolicy(body.policy), actor=caller.actor)
    return ClaimPolicyIO(policy=body.policy)
