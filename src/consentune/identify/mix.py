"""Tracklists for DJ mixes and live sets: which indexed tracks play where, and for how long.

Pipeline (pure; the service decodes and logs)::

    mix samples -> one query fingerprint of the whole mix
      -> windows of WINDOW_S every HOP_S: lookup + match_hashes (low CANDIDATE_THRESHOLD)
      -> Viterbi path over each window's candidates plus "unknown"
      -> segments: runs of one track on one alignment, grown by aligned
         neighbours, cut at the middle of each crossfade, gaps filled with unknown

The path rewards a candidate by how far its score (``-log10`` of the
false-match bound, see :mod:`consentune.identify.match`) exceeds
``_EVIDENCE_FLOOR``; staying on one track along one alignment is free, any
change costs ``_SWITCH``.  So a weak window inside a track (speech over
it, an EQ cut) is bridged, and a lone strong window of something else is
not enough to interrupt it.  A segment is reported as a track only if one
of its windows reaches the ordinary :data:`THRESHOLD`; everything else is
``unknown``.  Times are seconds of the mix.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from consentune.errors import InvalidInput
from consentune.identify.index import FingerprintIndex
from consentune.identify.match import THRESHOLD, Match, match_hashes
from consentune.identify.triplets import FRAME_S, SAMPLE_RATE, Hashes, fingerprint

WINDOW_S = 10.0  # seconds per query window
HOP_S = 5.0  # seconds between window starts
CANDIDATE_THRESHOLD = 3.0  # window matches kept as candidates (a segment still needs one >= THRESHOLD)
MIN_MIX_S = 20.0  # shorter audio is an excerpt: use plain identification
_EVIDENCE_FLOOR = 6.0  # a candidate below this score is weaker evidence than "unknown"
_SWITCH = 10.0  # path cost of changing track
_JUMP = 2.0  # path cost of moving to another place in the same track (a repeated chorus or loop)
_ALIGN_TOL_S = 3.0  # seconds of reference position two windows of one alignment may disagree by
_MIN_WINDOWS = 2  # a segment spans at least this many windows (a lone window is a blip, not a play)
_MERGE_GAP_WINDOWS = 2  # unknown windows bridged between two runs of one alignment
_MIN_UNKNOWN_S = 10.0  # shorter gaps between known segments are split between them (a long crossfade)
_SCORE_CAP = 60.0  # one very strong window should not carry a run of weak ones


@dataclass(frozen=True, slots=True)
class MixSegment:
    """One stretch of the mix: a track (``track_id``) or ``None`` for unknown material.

    ``start_s``/``end_s`` are mix seconds; ``ref_start_s``/``ref_end_s`` the
    matching range of the track; ``time_scale`` reference seconds per mix
    second; ``pitch_semitones`` the mix's shift against the track;
    ``confidence`` the best window score (``-log10`` false-match bound, 0
    for unknown); ``windows`` how many windows the path spent on it.
    """

    track_id: str | None
    start_s: float
    end_s: float
    ref_start_s: float | None
    ref_end_s: float | None
    time_scale: float | None
    pitch_semitones: float | None
    confidence: float
    windows: int

    @property
    def known(self) -> bool:
        return self.track_id is not None


@dataclass(slots=True)
class _Run:
    """Consecutive path windows on one track and alignment; ``matches`` in mix time."""

    first: int
    last: int
    matches: list[Match]

    @property
    def track_id(self) -> str:
        return self.matches[0].track_id


def tracklist(
    samples: npt.NDArray[np.float32],
    index: FingerprintIndex,
    *,
    window_s: float = WINDOW_S,
    hop_s: float = HOP_S,
) -> list[MixSegment]:
    """Timeline of mono audio at :data:`SAMPLE_RATE`: known and unknown segments tiling the whole mix."""
    if not 2.0 <= hop_s <= window_s:
        raise InvalidInput(f"hop {hop_s} s must lie between 2 s and the window ({window_s} s)", hint="use the defaults")
    total_s = samples.shape[0] / SAMPLE_RATE
    if total_s < MIN_MIX_S:
        raise InvalidInput(
            f"a mix must be at least {MIN_MIX_S:g} s long (got {total_s:.1f} s)",
            hint="identify short excerpts with `consentune identify FILE` instead",
        )
    return decode_timeline(window_candidates(samples, index, window_s=window_s, hop_s=hop_s), total_s=total_s)


def decode_timeline(candidates: list[list[Match]], *, total_s: float) -> list[MixSegment]:
    """Segments tiling ``total_s`` seconds from per-window candidates (see the module docstring)."""
    path = _viterbi(candidates)
    runs = [r for r in _runs(candidates, path) if max(m.score for m in r.matches) >= THRESHOLD]
    runs = [r for r in _merge(runs) if r.last - r.first + 1 >= _MIN_WINDOWS]
    runs = _merge(runs)  # a dropped blip may have split one play in two
    return _timeline([_grown(r, candidates) for r in runs], total_s)


def window_candidates(
    samples: npt.NDArray[np.float32], index: FingerprintIndex, *, window_s: float = WINDOW_S, hop_s: float = HOP_S
) -> list[list[Match]]:
    """Per window (``k * hop_s`` to ``+ window_s``), its matches at or above the candidate threshold, in mix time."""
    _, hashes = fingerprint(samples, query=True)
    order = np.argsort(hashes.t, kind="stable")
    hashes = Hashes(hashes.key[order], hashes.t[order], hashes.f[order], hashes.anchor[order])
    total_frames = samples.shape[0] / (SAMPLE_RATE * FRAME_S)
    win, hop = window_s / FRAME_S, hop_s / FRAME_S
    out: list[list[Match]] = []
    start = 0.0
    while True:
        end = min(start + win, total_frames)
        lo, hi = np.searchsorted(hashes.t, [start, end])
        out.append(_match_window(hashes, int(lo), int(hi), start, end, index))
        if end >= total_frames:
            return out
        start += hop


def _match_window(hashes: Hashes, lo: int, hi: int, start: float, end: float, index: FingerprintIndex) -> list[Match]:
    if hi - lo == 0:
        return []
    sub = Hashes(hashes.key[lo:hi], hashes.t[lo:hi] - np.float32(start), hashes.f[lo:hi], hashes.anchor[lo:hi])
    found = match_hashes(sub, index.lookup(sub.key), query_frames=int(end - start) + 1, threshold=CANDIDATE_THRESHOLD)
    offset = start * FRAME_S
    return [
        replace(m, query_start_s=round(m.query_start_s + offset, 2), query_end_s=round(m.query_end_s + offset, 2))
        for m in found
    ]


def _aligned(a: Match, b: Match) -> bool:
    """Same track, and ``b`` sits where ``a``'s line through the reference predicts."""
    if a.track_id != b.track_id:
        return False
    predicted = a.ref_start_s + (b.query_start_s - a.query_start_s) * a.time_scale
    return abs(predicted - b.ref_start_s) <= _ALIGN_TOL_S


def _same_play(a: Match, b: Match) -> bool:
    """Same track: one play of it, even if the alignment jumps between repeats or a weak window misjudges speed."""
    return a.track_id == b.track_id


def _viterbi(candidates: list[list[Match]]) -> list[int]:
    """Best state per window: an index into that window's candidates, or -1 for unknown."""
    prev: list[Match] = []
    prev_score = np.zeros(1)  # state 0 = unknown, then candidates
    back: list[npt.NDArray[np.int64]] = []
    for found in candidates:
        gain = np.array([0.0, *(min(m.score, _SCORE_CAP) - _EVIDENCE_FLOOR for m in found)])
        trans = np.full((len(prev) + 1, len(found) + 1), -_SWITCH)
        trans[0, 0] = 0.0
        trans[0, 1:] = trans[1:, 0] = -_SWITCH / 2
        for i, a in enumerate(prev):
            for j, b in enumerate(found):
                if _aligned(a, b):
                    trans[i + 1, j + 1] = 0.0
                elif _same_play(a, b):
                    trans[i + 1, j + 1] = -_JUMP
        total = prev_score[:, None] + trans
        back.append(np.argmax(total, axis=0))
        prev_score = total.max(axis=0) + gain
        prev = found
    state = int(np.argmax(prev_score))
    path = [state]
    for pointers in reversed(back[1:]):
        state = int(pointers[state])
        path.append(state)
    return [s - 1 for s in reversed(path)]


def _runs(candidates: list[list[Match]], path: list[int]) -> list[_Run]:
    runs: list[_Run] = []
    for w, state in enumerate(path):
        if state < 0:
            continue
        m = candidates[w][state]
        last = runs[-1] if runs else None
        if last is not None and last.last == w - 1 and _same_play(last.matches[-1], m):
            last.last = w
            last.matches.append(m)
        else:
            runs.append(_Run(w, w, [m]))
    return runs


def _merge(runs: list[_Run]) -> list[_Run]:
    """Join runs of one play split by a few unknown windows (a breakdown, a long talk-over)."""
    out: list[_Run] = []
    for run in runs:
        prev = out[-1] if out else None
        if prev and run.first - prev.last - 1 <= _MERGE_GAP_WINDOWS and _same_play(prev.matches[-1], run.matches[0]):
            prev.last, prev.matches = run.last, prev.matches + run.matches
        else:
            out.append(run)
    return out


def _grown(run: _Run, candidates: list[list[Match]]) -> _Run:
    """Add matches of the same play from the windows just outside the run (a crossfade given to the other track)."""
    extra: list[Match] = []
    for step, edge in ((-1, run.matches[0]), (1, run.matches[-1])):
        w = run.first - 1 if step < 0 else run.last + 1
        while 0 <= w < len(candidates):
            hit = next((m for m in candidates[w] if _same_play(edge, m)), None)
            if hit is None:
                break
            extra.append(hit)
            w += step
    return _Run(run.first, run.last, run.matches + extra)


def _timeline(runs: list[_Run], total_s: float) -> list[MixSegment]:
    """Known segments cut at the middle of overlaps (crossfades); the gaps between them become unknown."""
    spans = [[min(m.query_start_s for m in r.matches), max(m.query_end_s for m in r.matches)] for r in runs]
    for a, b in itertools.pairwise(spans):
        if a[1] > b[0]:  # overlap: both tracks audible, the switch is in the middle
            a[1] = b[0] = round((a[1] + b[0]) / 2, 2)
    segments: list[MixSegment] = []
    cursor = 0.0
    for n, (run, (start, end)) in enumerate(zip(runs, spans, strict=True)):
        if end <= start:
            continue
        if start - cursor >= _MIN_UNKNOWN_S:
            segments.append(_unknown(cursor, start))
        elif segments and segments[-1].known:  # a short gap: the switch is in its middle
            middle = round((cursor + start) / 2, 2)
            segments[-1] = replace(segments[-1], end_s=middle)
            start = middle
        else:
            start = cursor
        last = n == len(runs) - 1
        end = total_s if last and total_s - end < _MIN_UNKNOWN_S else end
        segments.append(_known(run, start, end))
        cursor = end
    if total_s - cursor > 0.01:
        segments.append(_unknown(cursor, total_s))
    return segments


def _known(run: _Run, start: float, end: float) -> MixSegment:
    ms = run.matches
    best = max(ms, key=lambda m: m.score)
    line = max(ms, key=lambda m: sum(x.matched for x in ms if _aligned(m, x)))  # the alignment most windows share
    weights = np.array([m.matched for m in ms], dtype=np.float64)
    scale = float(np.average([m.time_scale for m in ms], weights=weights))
    pitch = float(np.average([m.pitch_semitones for m in ms], weights=weights))
    ref_at = line.ref_start_s - line.query_start_s * line.time_scale  # reference position at mix time 0
    return MixSegment(
        track_id=best.track_id,
        start_s=round(start, 2),
        end_s=round(end, 2),
        ref_start_s=round(max(0.0, ref_at + start * line.time_scale), 2),
        ref_end_s=round(ref_at + end * line.time_scale, 2),
        time_scale=round(scale, 4),
        pitch_semitones=round(pitch, 3),
        confidence=best.score,
        windows=run.last - run.first + 1,
    )


def _unknown(start: float, end: float) -> MixSegment:
    return MixSegment(None, round(start, 2), round(end, 2), None, None, None, None, 0.0, 0)


__all__ = [
    "CANDIDATE_THRESHOLD",
    "HOP_S",
    "MIN_MIX_S",
    "WINDOW_S",
    "MixSegment",
    "decode_timeline",
    "tracklist",
    "window_candidates",
]
