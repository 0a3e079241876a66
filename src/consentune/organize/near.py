"""Near duplicates from content identification's stored matches (the fingerprint engine's verdicts).

Every upload is fingerprinted and checked against the index at ingest, in
windows of ~20 s, so each pair of catalogue tracks that share audio already has
a stored match: its best window's aligned time ranges and the speed factor.  A
pair is a *duplicate* (same recording: re-encode, trim, gain, small speed
change, or an excerpt) when that window is well covered **and** the two have
the same length once the speed factor is undone, or one is an excerpt of the
other.  Two full-length tracks that share only a theme or a sample fail the
length test and stay partial matches, out of duplicate groups.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from consentune.organize.duplicates import DuplicateMatch
from consentune.ports import StoredMatch
from consentune.types import TrackId

MIN_COVERAGE = 0.5  # share of the checked window (or of a shorter track) the aligned audio must span
WINDOW_S = 20.0  # identification checks uploads in windows of this length
LENGTH_SLACK_S = 6.0  # trims of a few seconds still count as the same length ...
LENGTH_SLACK = 0.1  # ... or this share of the original, whichever is larger


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
        span = max(m.query_end_s - m.query_start_s, m.ref_end_s - m.ref_start_s)
        scaled = upload * m.time_scale  # the upload's length on the original's clock
        if abs(scaled - original) <= max(LENGTH_SLACK_S, LENGTH_SLACK * original):  # same length: one window
            return span >= self._min_coverage * min(upload, original, WINDOW_S)
        return span >= self._min_coverage * min(scaled, original)  # an excerpt: mostly covered


__all__ = ["MIN_COVERAGE", "WINDOW_S", "StoredMatchDuplicates"]
