"""Near duplicates from content identification's stored matches (the fingerprint engine's verdicts).

Every upload is fingerprinted and checked against the index at ingest, so each
pair of catalogue tracks that share audio already has a stored match.  A pair is
a *duplicate* (same recording: re-encode, trim, gain, small speed change) only
when the aligned audio covers most of the shorter track; a shorter shared span
is a partial match (a reused theme, a sample) and stays out of duplicate groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from consentune.organize.duplicates import DuplicateMatch
from consentune.ports import StoredMatch
from consentune.types import TrackId

MIN_COVERAGE = 0.5  # share of the shorter track's duration the aligned audio must span


class StoredMatchDuplicates:
    """A :class:`~consentune.organize.duplicates.NearDuplicateFinder` over stored identification matches."""

    def __init__(
        self,
        *,
        matches_for: Callable[[TrackId], list[StoredMatch]],
        duration_s: Callable[[TrackId], float | None],
        min_coverage: float = MIN_COVERAGE,
    ) -> None:
        self._matches_for = matches_for
        self._duration_s = duration_s
        self._min_coverage = min_coverage

    def near_duplicates(self, track: TrackId, *, candidates: Sequence[TrackId], actor: str) -> list[DuplicateMatch]:
        allowed = set(candidates)
        best: dict[TrackId, float] = {}
        for m in self._matches_for(track):
            other = m.matched_track_id if m.track_id == track else m.track_id
            if other == track or other not in allowed or not self._covers(m):
                continue
            best[other] = max(best.get(other, 0.0), m.score)
        return [DuplicateMatch(t, "near", s) for t, s in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))]

    def _covers(self, m: StoredMatch) -> bool:
        upload, original = self._duration_s(m.track_id), self._duration_s(m.matched_track_id)
        if not upload or not original:
            return False
        shorter = min(upload, original)
        span = max(m.query_end_s - m.query_start_s, m.ref_end_s - m.ref_start_s)
        return span >= self._min_coverage * shorter


__all__ = ["MIN_COVERAGE", "StoredMatchDuplicates"]
