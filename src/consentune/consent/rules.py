"""Artist agreements: per-artist or per-track rules that override the terms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consentune.types import ArtistId, Purpose, TrackId


@dataclass(frozen=True, slots=True)
class ConsentRule:
    """An artist's yes or no to one purpose, for all their tracks or one track.

    Rules are never edited: a later rule for the same scope supersedes an
    earlier one, so the history of what an artist said stays intact.
    ``valid_from``/``valid_until`` bound the rule in time (UTC, half-open).
    A track rule whose ``allow`` is ``None`` withdraws the track's own choice:
    from then on the track follows the artist's all-tracks choice again.
    """

    id: int
    artist_id: ArtistId
    track_id: TrackId | None
    purpose: Purpose
    allow: bool | None
    created_at: datetime
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    def active_at(self, at: datetime) -> bool:
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_until is None or at < self.valid_until

    @property
    def follows_artist(self) -> bool:
        """True for a rule that ends a track's own choice (the track follows the all-tracks choice)."""
        return self.allow is None

    @property
    def scope(self) -> str:
        return "track" if self.track_id is not None else "artist"


__all__ = ["ConsentRule"]
