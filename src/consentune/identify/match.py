"""Match query hashes against index postings: clustering, scale estimates and a calibrated score.

For each candidate track the hash matches vote for a line
``t_ref = scale * (t_query - centre) + offset`` over a grid of time scales
(``SCALE_RANGE``); the best (scale, offset) cell is refined, then the
anchor frequency differences ``f_ref - f_query`` must agree within
``_DF_TOL`` bins (the pitch shift).  The number ``k`` of distinct query
anchors that survive both tests is compared with what chance gives:

* a match of random hashes lands in one tested cell with probability
  ``p = (w_t / R_t) * (w_f / R_f)`` (cell widths over the ranges of offsets
  and frequency shifts it could take);
* with ``m`` random matches for the track the cell count is Poisson with
  mean ``λ = m p``; over the ``N = n_scales * R_t/w_t * R_f/w_f`` cells tested
  the chance of any reaching ``k`` is at most ``N * P[Poisson(λ) >= k]``;
* over every track in the index (Bonferroni) the false-match probability
  is at most ``n_tracks`` times that.

``score = -log10`` of that bound; :data:`THRESHOLD` was fixed on development
excerpts (a different seed from the reported bench) before measuring.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy.special import pdtrc

from consentune.identify.index import Postings
from consentune.identify.triplets import BINS_PER_OCTAVE, FRAME_S, Hashes

THRESHOLD = 8.0  # -log10 of the false-match bound, fixed on development excerpts (seed 7)
SCALE_RANGE = (0.92, 1.08)  # reference seconds per query second considered
_T_TOL = 1.5  # frames either side of the fitted line
_DF_TOL = 1.5  # bins either side of the modal frequency shift
_DF_RANGE = 48.0  # bins of frequency shift a random match can take
_DF_SEARCH = 7.0  # bins (±2.3 semitones) of pitch shift searched
_COARSE_BIN = 24  # frames: first-pass offset bins, wide enough for ±8 % drift over 10 s
_SHORTLIST = 12  # tracks given the full clustering
_MAX_MATCHES = 4  # per query
_MIN_VOTES = 4


@dataclass(frozen=True, slots=True)
class Match:
    """One aligned stretch of the query found in a reference track.

    Times in seconds; ``time_scale`` is reference seconds per query second
    (1.05 = the query plays 5 % faster); ``pitch_semitones`` is the shift of
    the query relative to the reference; ``score`` is ``-log10`` of the
    false-match bound; ``matched`` counts distinct aligned query anchors.
    """

    track_id: str
    score: float
    matched: int
    query_start_s: float
    query_end_s: float
    ref_start_s: float
    ref_end_s: float
    time_scale: float
    pitch_semitones: float

    @property
    def speed_factor(self) -> float:
        """Playback-rate factor implied by the frequency shift (1.05 = 5 % higher)."""
        return float(2.0 ** (self.pitch_semitones / 12.0))


def match_hashes(
    query: Hashes,
    postings: Postings,
    *,
    query_frames: int,
    threshold: float = THRESHOLD,
    exclude: Collection[str] = (),
) -> list[Match]:
    """Matches at or above ``threshold``, best first; ``query_frames`` is the query length in frames.

    Tracks in ``exclude`` (e.g. the uploader's own) are dropped *before* the
    shortlist and the cut to the best few, so they can never crowd out the
    track a query really copies.
    """
    n_tracks = max(1, int(np.count_nonzero(postings.lengths >= 0)))
    if exclude:
        postings = _without(postings, exclude)
    if postings.query_row.size == 0:
        return []
    centre = query_frames / 2.0
    tq = query.t[postings.query_row].astype(np.float64) - centre
    fq = query.f[postings.query_row].astype(np.float64)
    anchor = query.anchor[postings.query_row]
    found: list[Match] = []
    for track in _shortlist(postings, tq):
        rows = np.nonzero(postings.track == track)[0]
        live = np.ones(rows.size, dtype=bool)
        for _ in range(_MAX_MATCHES):
            sub = rows[live]
            if sub.size < _MIN_VOTES:
                break
            cluster = _cluster(
                tq[sub], postings.frame[sub].astype(np.float64), fq[sub], postings.freq[sub], query_frames
            )
            if cluster is None:
                break
            inliers, scale, _offset, shift = cluster
            k = int(np.unique(anchor[sub[inliers]]).size)
            if k < _MIN_VOTES:
                break
            score = _score(k=k, m=int(rows.size), ref_frames=int(postings.lengths[track]),
                           query_frames=query_frames, n_tracks=n_tracks)  # fmt: skip
            if score < threshold:
                break
            q_t = tq[sub[inliers]] + centre
            r_t = postings.frame[sub[inliers]]
            found.append(
                Match(
                    track_id=postings.tracks[track],
                    score=round(score, 2),
                    matched=k,
                    query_start_s=round(float(q_t.min()) * FRAME_S, 2),
                    query_end_s=round(float(q_t.max()) * FRAME_S, 2),
                    ref_start_s=round(float(r_t.min()) * FRAME_S, 2),
                    ref_end_s=round(float(r_t.max()) * FRAME_S, 2),
                    time_scale=round(scale, 4),
                    pitch_semitones=round(-shift * 12.0 / BINS_PER_OCTAVE, 3),
                )
            )
            live[np.nonzero(live)[0][inliers]] = False
    found.sort(key=lambda m: -m.score)
    return found[:_MAX_MATCHES]


def _without(postings: Postings, exclude: Collection[str]) -> Postings:
    """The same lookup with every posting of the excluded tracks removed (calibration unchanged)."""
    banned = set(exclude)
    drop = np.array([i for i, name in enumerate(postings.tracks) if name in banned], dtype=np.int64)
    if drop.size == 0:
        return postings
    keep = ~np.isin(postings.track, drop)
    return replace(
        postings,
        query_row=postings.query_row[keep],
        track=postings.track[keep],
        frame=postings.frame[keep],
        freq=postings.freq[keep],
    )


def _shortlist(postings: Postings, tq: npt.NDArray[np.float64]) -> list[int]:
    """Tracks with the most votes in one coarse offset bin (scale 1, wide bins)."""
    coarse = np.floor((postings.frame - tq) / _COARSE_BIN).astype(np.int64) + 2
    span = int(coarse.max()) + 2
    key = postings.track * span + coarse
    uniq, counts = np.unique(key, return_counts=True)
    # a drifting line straddles two bins: credit each bin with its upper neighbour
    nxt = np.searchsorted(uniq, uniq + 1)
    has_next = (nxt < uniq.size) & (uniq[np.minimum(nxt, uniq.size - 1)] == uniq + 1)
    pair = counts + np.where(has_next, counts[np.minimum(nxt, uniq.size - 1)], 0)
    track = uniq // span
    starts = np.flatnonzero(np.r_[True, track[1:] != track[:-1]])
    best = np.maximum.reduceat(pair, starts)
    ranked = np.argsort(-best, kind="stable")[:_SHORTLIST]
    return [int(track[starts[r]]) for r in ranked if best[r] >= _MIN_VOTES]


def _cluster(
    tq: npt.NDArray[np.float64],
    tr: npt.NDArray[np.float64],
    fq: npt.NDArray[np.float64],
    fr: npt.NDArray[np.int64],
    query_frames: int,
) -> tuple[npt.NDArray[np.intp], float, float, float] | None:
    """Best (scale, offset) line, then the modal frequency shift; returns inliers and the estimates."""
    half = max(query_frames / 2.0, 8.0)
    step = _T_TOL / half
    scales = np.arange(SCALE_RANGE[0], SCALE_RANGE[1] + step / 2, step)
    offsets = tr[None, :] - scales[:, None] * tq[None, :]
    bins = np.floor(offsets / (2 * _T_TOL)).astype(np.int64)
    low = int(bins.min())
    width = int(bins.max()) - low + 2
    flat = (np.arange(scales.size)[:, None] * width + (bins - low)).ravel()
    votes = np.bincount(flat, minlength=scales.size * width).reshape(scales.size, width)
    votes[:, :-1] += votes[:, 1:]  # cells overlap by one bin so a line on a boundary is not split
    best = int(np.argmax(votes))
    a_idx, b_idx = divmod(best, width)
    if votes.flat[best] < _MIN_VOTES:
        return None
    scale = float(scales[a_idx])
    centre_offset = (b_idx + low + 1) * 2 * _T_TOL
    near = np.nonzero(np.abs(offsets[a_idx] - centre_offset) <= 2 * _T_TOL)[0]
    if near.size >= 3:  # refine by least squares on the first inliers
        scale, offset = _fit(tq[near], tr[near], scale)
    else:
        offset = centre_offset
    inliers = np.nonzero(np.abs(tr - (scale * tq + offset)) <= _T_TOL)[0]
    if inliers.size < _MIN_VOTES:
        return None
    df = fr[inliers] - fq[inliers]
    hist, edges = np.histogram(df, bins=np.arange(-_DF_SEARCH - 1.0, _DF_SEARCH + 2.0))
    window = np.convolve(hist, np.ones(3), mode="same")
    mode = float(edges[int(np.argmax(window))] + 0.5)
    shift = float(np.median(df[np.abs(df - mode) <= _DF_TOL])) if np.any(np.abs(df - mode) <= _DF_TOL) else mode
    keep = inliers[np.abs(df - shift) <= _DF_TOL]
    return keep, scale, offset, shift


def _fit(tq: npt.NDArray[np.float64], tr: npt.NDArray[np.float64], prior: float) -> tuple[float, float]:
    spread = float(np.var(tq))
    if spread < 1.0:
        return prior, float(np.mean(tr - prior * tq))
    scale = float(np.cov(tq, tr, bias=True)[0, 1] / spread)
    scale = min(max(scale, SCALE_RANGE[0]), SCALE_RANGE[1])
    return scale, float(np.mean(tr) - scale * np.mean(tq))


def _score(*, k: int, m: int, ref_frames: int, query_frames: int, n_tracks: int) -> float:
    """-log10 of the bound on a chance cluster of ``k`` among ``m`` random matches (module docstring)."""
    width_t = 2 * _T_TOL + 1.0
    width_f = 2 * _DF_TOL + 1.0
    range_t = float(ref_frames + query_frames)
    n_scales = max(1.0, (SCALE_RANGE[1] - SCALE_RANGE[0]) * query_frames / 2.0 / _T_TOL)
    p = (width_t / range_t) * (width_f / _DF_RANGE)
    cells = n_scales * (range_t / width_t) * (2 * _DF_SEARCH / width_f)
    tail = float(pdtrc(k - 1, m * p))  # P[Poisson(m p) >= k]
    log_bound = math.log10(max(tail, 1e-300)) + math.log10(cells) + math.log10(n_tracks)
    return max(0.0, -log_bound)


__all__ = ["SCALE_RANGE", "THRESHOLD", "Match", "match_hashes"]
