"""Artist agreements: per-artist or per-track rules that override the terms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from consentune.errors import InvalidInput
from consentune.types import ArtistId, Purpose, TrackId

# Consent time bounds must stay representable on every backend and after any
# timezone shift (a datetime near year 9999 overflows once moved to UTC).
EARLIEST_BOUND = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_BOUND = datetime(9001, 1, 1, tzinfo=UTC)  # exclusive: years 1970–9000


@dataclass(frozen=True, slots=True)
class ConsentRule:
    """An artist's yes or no to one purpose, for all their tracks or one track.

    Rules are never edited: a later rule for the same scope supersedes an
    earlier one, so the history of what an artist said stays intact.
    ``valid_from``/``valid_until`` bound the rule in time (UTC, half-open).
    A track rule whose ``allow`` is ``None`` withdraws the track's own choice:
    from then on the track follows the artist's all-tracks choice again.
    ``defect`` is set when a stored rule could not be read back (e.g. a time
    bound outside the representable range): such a rule counts as a deny for
    its scope until the artist records a new answer.
    """

    id: int
    artist_id: ArtistId
    track_id: TrackId | None
    purpose: Purpose
    allow: bool | None
    created_at: datetime
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    defect: str = ""

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


def utc_bound(value: datetime | None, *, what: str) -> datetime | None:
    """``value`` in UTC if it lies in years 1970–9000 (naive times are taken as UTC); else InvalidInput.

    The year is checked before the conversion too, because converting a time
    near the end of the calendar to UTC overflows.
    """
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if EARLIEST_BOUND.year - 1 <= aware.year <= LATEST_BOUND.year - 1:
        utc = aware.astimezone(UTC)
        if EARLIEST_BOUND <= utc < LATEST_BOUND:
            return utc
    raise InvalidInput(
        f"{what} {value.isoformat()} is outside the supported range (years 1970–9000 in UTC)",
        hint=f"give {what} between 1970-01-01T00:00:00Z and 9000-12-31T23:59:59Z, or leave it out for no bound",
    )


__all__ = ["EARLIEST_BOUND", "LATEST_BOUND", "ConsentRule", "utc_bound"]
