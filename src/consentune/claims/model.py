"""Claims: when identification finds another artist's track inside an upload, the original artist's say governs it.

States and who moves them (docs/claims.md)::

    open ──dispute (copy's uploader)──> disputed
    open | disputed ──uphold (original artist, operator)──> upheld
    open | disputed | upheld ──release (original artist, operator)──> released

While a claim is open, disputed or upheld it *governs* the copy.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from consentune.types import ArtistId, TrackId


class ClaimStatus(enum.StrEnum):
    OPEN = "open"
    DISPUTED = "disputed"
    UPHELD = "upheld"
    RELEASED = "released"

    @property
    def governs(self) -> bool:
        """Does a claim in this state put the copy under the original artist's choices?"""
        return self is not ClaimStatus.RELEASED


class ClaimPolicy(enum.StrEnum):
    """What the original artist wants done with copies while a claim governs them."""

    BLOCK = "block"  # never streamed or recommended
    HOLD = "hold"  # not streamed or recommended until the claim is released (the default)
    ALLOW = "allow"  # streamed, credited to the original; AI uses still follow the original's consent


DEFAULT_POLICY = ClaimPolicy.HOLD


@dataclass(frozen=True, slots=True)
class Claim:
    """One copy of one original: where the shared audio sits in each, and the claim's state."""

    id: int
    copy_track_id: TrackId
    original_track_id: TrackId
    copy_artist_id: ArtistId
    original_artist_id: ArtistId
    status: ClaimStatus
    score: float
    copy_start_s: float
    copy_end_s: float
    original_start_s: float
    original_end_s: float
    time_scale: float
    pitch_semitones: float
    partial: bool  # the copy re-uses a section, not the whole of either track
    opened_at: datetime
    updated_at: datetime
    dispute_reason: str | None = None
    resolved_by: str | None = None


__all__ = ["DEFAULT_POLICY", "Claim", "ClaimPolicy", "ClaimStatus"]
