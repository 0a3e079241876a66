"""Operator endpoints: API keys and purge jobs."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query

from consentune.api.deps import Caller, Service
from consentune.api.schemas import MAX_INT, KeyIn, KeyOut, PurgeJobOut, ShieldDecisionOut
from consentune.errors import InvalidInput
from consentune.types import ArtistId, Role

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/keys", response_model=list[KeyOut])
def list_keys(service: Service, caller: Caller) -> list[KeyOut]:
    caller.require(Role.ADMIN)
    return [KeyOut.of(k) for k in service.keys.list()]


@router.post("/keys", response_model=KeyOut, status_code=201)
def create_key(body: KeyIn, service: Service, caller: Caller) -> KeyOut:
    caller.require(Role.ADMIN)
    try:
        role = Role(body.role)
    except ValueError:
        raise InvalidInput(f"unknown role {body.role!r}", hint="use admin, artist or service") from None
    artist = service.catalog.artist(body.artist_id) if body.artist_id else None
    record, secret = service.keys.create(role=role, artist_id=ArtistId(artist.id) if artist else None, label=body.label)
    return KeyOut.of(record, secret)


@router.delete("/keys/{key_id}", status_code=204)
def revoke_key(key_id: str, service: Service, caller: Caller) -> None:
    caller.require(Role.ADMIN)
    service.keys.revoke(key_id)


@router.get("/purge-jobs", response_model=list[PurgeJobOut])
def purge_jobs(service: Service, caller: Caller) -> list[PurgeJobOut]:
    caller.require(Role.ADMIN)
    return [PurgeJobOut.of(j) for j in service.consent.purge_jobs()]


@router.get("/shield/status")
def shield_status(service: Service, caller: Caller) -> dict[str, object]:
    caller.require(Role.ADMIN)
    return service.listen.guard.status()


@router.get("/shield/decisions", response_model=list[ShieldDecisionOut])
def shield_decisions(
    service: Service,
    caller: Caller,
    active_only: bool = False,
    action: Annotated[str | None, Query(max_length=32)] = None,
) -> list[ShieldDecisionOut]:
    """Challenges and blocks, newest first, each with the signals that explain it."""
    caller.require(Role.ADMIN)
    return [ShieldDecisionOut.of(r) for r in service.listen.guard.decisions(action=action, active_only=active_only)]


@router.delete("/shield/blocks/{record_id}", status_code=204)
def lift_block(record_id: Annotated[int, Path(ge=1, le=MAX_INT)], service: Service, caller: Caller) -> None:
    caller.require(Role.ADMIN)
    service.listen.guard.lift(record_id, by=caller.actor, now=time.time())
