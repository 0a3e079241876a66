"""Near duplicates from content identification's stored matches (the fingerprint engine's verdicts).

Every upload is fingerprinted and checked against the index at ingest, end to
end in back-to-back windows whose aligned matches chain into one extent, so
each pair of catalogue tracks that share audio has a stored match spanning
all the audio they share, with the speed factor.  A pair is a *duplicate*
(same recording: re-encode, trim, gain, small speed change, or an excerpt of
any length) when that extent covers most of the shorter of the two, measured
on the original's clock.  A sample or a section reused inside a longer work
covers little of either and stays a partial match (a claim on a range), out
of duplicate groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from consentune.organize.duplicates import DuplicateMatch
from consentune.ports import StoredMatch
from consentune.types import TrackId

MIN_COVERAGE = 0.7  # share of the shorter track the aligned audio must span


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

    def near_duplicates(
        self, track: TrackId, *, candidates: Sequence[TrackId] | None, actor: str
    ) -> list[DuplicateMatch]:
        allowed = None if candidates is None else set(candidates)
        best: dict[TrackId, float] = {}
        for m in self._matches_for(track):
            other = m.matched_track_id if m.track_id == track else m.track_id
            if other == track or (allowed is not None and other not in allowed) or not self._covers(m):
                continue
            best[other] = max(best.get(other, 0.0), m.score)
        return [DuplicateMatch(t, "near", s) for t, s in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))]

    def _covers(self, m: StoredMatch) -> bool:
        upload, original = self._duration_s(m.track_id), self._duration_s(m.matched_track_id)
        if not upload or not original:
            return False
        return coverage_of_shorter(m, upload_s=upload, original_s=original) >= self._min_coverage


def coverage_of_shorter(m: StoredMatch, *, upload_s: float, original_s: float) -> float:
    """Share of the shorter track (on the original's clock) that the match's aligned extent spans."""
    scaled = upload_s * m.time_scale  # the upload's length on the original's clock
    span = max((m.query_end_s - m.query_start_s) * m.time_scale, m.ref_end_s - m.ref_start_s)
    shorter = min(scaled, original_s)
    return span / shorter if shorter > 0 else 0.0


__all__ = ["MIN_COVERAGE", "StoredMatchDuplicates", "coverage_of_shorter"]
