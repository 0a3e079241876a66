"""Fraud alerts (admin: all; artist: only alerts touching their tracks), live event intake, play counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from consentune.api.deps import Caller, Service
from consentune.api.schemas import PlayRows
from consentune.plays import parse_records
from consentune.types import Role

router = APIRouter(prefix="/v1", tags=["fraud"])


class FraudEventsIn(BaseModel):
    plays: PlayRows


@router.get("/fraud/alerts")
def list_alerts(service: Service, caller: Caller, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """Alerts with their evidence, strongest first; an artist sees only alerts naming one of their tracks,
    with only their own track ids (accounts, networks, devices and other artists' tracks are counted)."""
    caller.require(Role.ADMIN, Role.ARTIST, Role.SERVICE)
    if caller.role is Role.ARTIST:  # their own tracks only; listeners and others' tracks just counted
        mine = service.fraud.artist_alerts(artist=caller.artist_id, limit=limit) if caller.artist_id else []
        return {"alerts": [a.to_dict() for a in mine]}
    return {"alerts": [a.to_dict() for a in service.fraud.alerts(limit=limit)]}


@router.post("/fraud/events")
def push_events(body: FraudEventsIn, service: Service, caller: Caller) -> dict[str, Any]:
    """Feed play events to the live detector (not stored as plays); returns alerts raised or updated."""
    caller.require(Role.SERVICE, Role.ADMIN)
    parsed = parse_records(enumerate(body.plays))
    alerts, stats = service.fraud.push(parsed.events, actor=caller.actor)
    return {
        "alerts": [a.to_dict() for a in alerts],
        "intake": stats.as_dict(),
        "rejected": [{"index": e.line, "error": e.message} for e in parsed.errors],
    }


@router.get("/me/play-counts")
def my_play_counts(service: Service, caller: Caller) -> dict[str, Any]:
    """Counted plays (past 30 s) per track of the calling artist, flagged plays excluded."""
    caller.require(Role.ARTIST)
    assert caller.artist_id is not None
    return {"counts": service.fraud.play_counts(artist=caller.artist_id, actor=caller.actor)}
