"""The live detector's intake as a replicated log, so W workers run one detector's worth of state.

Every worker appends the batches it receives to one shared, ordered log
(:class:`LiveEventLog`; Redis streams in :mod:`consentune.sharedstate`) and
then feeds its own :class:`~consentune.fraud.detector.StreamDetector` every
batch up to its own, in log order.  Each worker's detector therefore sees
exactly the same batches in the same order as every other: one picture,
computed W times.  The log's ``epoch`` changes when the log is lost (a Redis
restart); a worker that notices starts a fresh detector, as a restarted
single worker would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, Protocol

from consentune.types import PlayEvent, TrackId


class LiveEventLog(Protocol):
    def epoch(self) -> str:
        """An id that changes whenever the log's history was lost."""

    def append(self, events: Sequence[PlayEvent]) -> str:
        """Append one batch; return its position (an opaque, ordered id)."""

    def read(self, *, after: str | None, upto: str) -> list[tuple[str, list[PlayEvent]]]:
        """Batches after position ``after`` (None: from the oldest kept) up to and including ``upto``."""


def event_to_json(event: PlayEvent) -> dict[str, Any]:
    out = asdict(event)
    out["played_at"] = event.played_at.isoformat()
    if event.account_created_at is not None:
        out["account_created_at"] = event.account_created_at.isoformat()
    return out


def event_from_json(raw: dict[str, Any]) -> PlayEvent:
    created = raw.get("account_created_at")
    return PlayEvent(
        user_id=str(raw["user_id"]),
        track_id=TrackId(str(raw["track_id"])),
        played_at=datetime.fromisoformat(raw["played_at"]),
        ms_played=int(raw["ms_played"]),
        ip=raw.get("ip"),
        device_id=raw.get("device_id"),
        user_agent=raw.get("user_agent"),
        country=raw.get("country"),
        account_created_at=datetime.fromisoformat(created) if created else None,
    )


__all__ = ["LiveEventLog", "event_from_json", "event_to_json"]
