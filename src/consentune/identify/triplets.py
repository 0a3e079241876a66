"""Speed-, tempo- and pitch-invariant fingerprints from triplets of spectral peaks.

Pipeline (pure numpy/scipy, no I/O)::

    mono samples @ SAMPLE_RATE
      -> STFT power -> log-frequency filterbank (BINS_PER_OCTAVE)  -> dB
      -> per-band whitening (running mean over time)
      -> local maxima (max filter) above a floor, strongest per second kept
      -> triplets (p1, p2, p3): p2, p3 among the next peaks after p1
      -> 32-bit key = hash of scale-invariant quantities, low 8 bits = f1

A change of *time* scale (tempo, or speed) multiplies every time difference
by the same factor, so the ratio ``(t2 - t1) / (t3 - t1)`` does not change; a
change of *frequency* scale (pitch, or speed) shifts every peak by the same
amount on a log-frequency axis, so ``f2 - f1`` and ``f3 - f1`` do not change.
Two coarse, non-invariant fields (the span ``t3 - t1`` on a log scale and
the band of ``f1``) make keys more specific; a query probes the neighbouring
cell whenever a value lies near a cell boundary, which covers the ±5 % /
±1 semitone range without keying on it.  The absolute anchor time and
frequency travel with each hash so a match can estimate the scale factors.

Units: times in frames of ``HOP / SAMPLE_RATE`` seconds, frequencies in
log-frequency bins (``BINS_PER_OCTAVE`` per octave above ``F_MIN`` Hz).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import scipy.fft
from scipy.ndimage import maximum_filter, uniform_filter1d

from consentune.errors import InvalidInput

SAMPLE_RATE = 8000  # Hz: decode rate for fingerprints
N_FFT = 1024  # samples (128 ms)
HOP = 256  # samples (32 ms)
FRAME_S = HOP / SAMPLE_RATE  # seconds per frame
F_MIN = 150.0  # Hz, bottom of the log axis
BINS_PER_OCTAVE = 36
N_OCTAVES = 4.6  # up to ~3.6 kHz
N_BINS = int(BINS_PER_OCTAVE * N_OCTAVES)  # 165 log bins; fits the 8-bit f1 field
MIN_DURATION_S = 1.0

# key fields: (band of f1, log2 span, time ratio, df12, df13)
_BAND_BINS = 18.0  # half an octave per f1 band
_SPAN_LOG2_MIN = 2.0  # log2(4 frames)
_SPAN_STEP = 0.5  # log2 units per span cell (a factor of 1.41)
_N_SPAN = 8
_N_RATIO = 10
_DF_MAX = 30.0  # bins (5/6 octave) either side of f1
_DF_STEP = 2.0
_N_DF = int(2 * _DF_MAX / _DF_STEP) + 1
_N_BAND = int(np.ceil(N_BINS / _BAND_BINS))
HASH_SPACE = _N_BAND * _N_SPAN * _N_RATIO * _N_DF * _N_DF  # distinct hash values (before the f1 byte)


@dataclass(frozen=True, slots=True)
class PeakParams:
    """Peak picking: neighbourhood in frames/bins, floor in dB above the band mean, density per second."""

    time_radius: int = 3
    freq_radius: int = 6
    floor_db: float = 3.0
    per_second: float = 10.0
    whiten_s: float = 3.0
    loudness_weight: float = 0.5  # rank peaks partly by loudness in the frame: loud partials survive noise


@dataclass(frozen=True, slots=True)
class HashParams:
    """Triplets: p2 and p3 among the ``fanout`` next peaks (in time) within ``max_span`` frames.

    ``probe`` enables neighbour-cell probing (query side); margins are in
    units of the cell width.
    """

    fanout: int = 3
    max_span: int = 64
    min_span: int = 4
    probe: bool = False
    band_margin: float = 3.5 / _BAND_BINS  # covers a ±1 semitone (3 bins) shift plus jitter
    span_margin: float = 0.09 / _SPAN_STEP  # covers a ±5 % time scale plus jitter
    ratio_margin: float = 0.25
    df_margin: float = 0.25


REFERENCE = (PeakParams(), HashParams())
QUERY = (PeakParams(per_second=20.0, floor_db=1.0), HashParams(fanout=7, probe=True))


@dataclass(frozen=True, slots=True)
class Peaks:
    """Spectral peaks sorted by time: ``t`` frames, ``f`` log bins (both sub-bin), ``level`` dB above band mean."""

    t: npt.NDArray[np.float32]
    f: npt.NDArray[np.float32]
    level: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Hashes:
    """One row per triplet: ``key`` (hash << 8 | f1 bin), anchor time ``t`` (frames), anchor ``f`` (bins).

    ``anchor`` indexes the peak the triplet starts from (to count distinct
    anchors), ``span`` is ``t3 - t1`` in frames.
    """

    key: npt.NDArray[np.uint32]
    t: npt.NDArray[np.float32]
    f: npt.NDArray[np.float32]
    anchor: npt.NDArray[np.int32]

    def __len__(self) -> int:
        return int(self.key.shape[0])


def check_audio(samples: npt.NDArray[np.float32], *, sample_rate: int) -> None:
    """Reject audio that cannot carry a fingerprint (too short, non-finite, silent)."""
    if sample_rate != SAMPLE_RATE:
        raise InvalidInput(
            f"fingerprints need {SAMPLE_RATE} Hz audio, got {sample_rate} Hz",
            hint=f"decode with target_sr={SAMPLE_RATE}",
        )
    duration = samples.shape[0] / sample_rate
    if duration < MIN_DURATION_S:
        raise InvalidInput(
            f"audio is {duration:.2f} s long; identification needs at least {MIN_DURATION_S:.0f} s",
            hint="send a longer excerpt (5-10 s works best)",
        )
    if not np.all(np.isfinite(samples)):
        raise InvalidInput("audio holds NaN or infinite samples", hint="re-encode the file")
    if float(np.max(np.abs(samples))) < 1e-4:
        raise InvalidInput("audio is silent", hint="send an excerpt with audible music")


def log_spectrogram(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """dB power on the log-frequency axis, shape ``(frames, N_BINS)``; samples mono at SAMPLE_RATE."""
    x = np.asarray(samples, dtype=np.float32)
    if x.shape[0] < N_FFT:
        x = np.pad(x, (0, N_FFT - x.shape[0]))
    frames = 1 + (x.shape[0] - N_FFT) // HOP
    view = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP][:frames]
    spec = scipy.fft.rfft(view * _window(), axis=1)  # single precision: half the work of numpy's
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    banded = power @ _filterbank()
    return np.asarray(10.0 * np.log10(banded + 1e-10), dtype=np.float32)


def find_peaks(spec_db: npt.NDArray[np.float32], params: PeakParams) -> Peaks:
    """Local maxima of the whitened spectrogram, the strongest ``per_second`` per second, sorted by time."""
    width = max(3, round(params.whiten_s / FRAME_S))
    white = spec_db - uniform_filter1d(spec_db, size=width, axis=0, mode="nearest")
    white -= np.median(white, axis=1, keepdims=True)  # per-frame level so loud bars do not hog peaks
    size = (2 * params.time_radius + 1, 2 * params.freq_radius + 1)
    local_max = maximum_filter(white, size=size, mode="constant", cval=-np.inf)
    is_peak = (white == local_max) & (white > params.floor_db)
    is_peak[:, 0] = is_peak[:, -1] = False
    is_peak[0, :] = is_peak[-1, :] = False
    ti, fi = np.nonzero(is_peak)
    level = white[ti, fi]
    rank = level
    if params.loudness_weight:
        loud = spec_db[ti, fi] - np.median(spec_db, axis=1)[ti]
        rank = level + params.loudness_weight * loud
    keep = _strongest_per_block(ti, rank, params.per_second)
    ti, fi, level = ti[keep], fi[keep], level[keep]
    t = ti + _parabolic(white[ti - 1, fi], level, white[ti + 1, fi])
    f = fi + _parabolic(white[ti, fi - 1], level, white[ti, fi + 1])
    order = np.argsort(t, kind="stable")
    return Peaks(t[order].astype(np.float32), f[order].astype(np.float32), level[order].astype(np.float32))


def triplet_hashes(peaks: Peaks, params: HashParams) -> Hashes:
    """Hashes of triplets whose p2, p3 are among the ``fanout`` next peaks after p1 (within ``_DF_MAX`` bins)."""
    n = peaks.t.shape[0]
    if n < 3:
        return _empty_hashes()
    first, second = _next_neighbours(peaks, params)
    j = second[:, 0]
    k = second[:, 1]
    i = first
    t1, t2, t3 = peaks.t[i], peaks.t[j], peaks.t[k]
    span = t3 - t1
    ok = (span >= params.min_span) & (t2 > t1) & (t3 > t2)
    i, j, k, t1, t2, span = i[ok], j[ok], k[ok], t1[ok], t2[ok], span[ok]
    f1 = peaks.f[i]
    fields = [
        f1 / _BAND_BINS,
        (np.log2(span) - _SPAN_LOG2_MIN) / _SPAN_STEP,
        (t2 - t1) / span * _N_RATIO,
        (peaks.f[j] - f1 + _DF_MAX) / _DF_STEP + 0.5,
        (peaks.f[k] - f1 + _DF_MAX) / _DF_STEP + 0.5,
    ]
    sizes = (_N_BAND, _N_SPAN, _N_RATIO, _N_DF, _N_DF)
    margins = (params.band_margin, params.span_margin, params.ratio_margin, params.df_margin, params.df_margin)
    cells, rows = _quantise(fields, sizes, margins if params.probe else None)
    code = np.zeros(rows.shape[0], dtype=np.int64)
    for cell, size in zip(cells, sizes, strict=True):
        code = code * size + cell
    f1_byte = np.clip(np.rint(f1[rows]), 0, 255).astype(np.int64)
    key = ((code << 8) | f1_byte).astype(np.uint32)
    return Hashes(key, t1[rows].astype(np.float32), f1[rows].astype(np.float32), i[rows].astype(np.int32))


def fingerprint(samples: npt.NDArray[np.float32], *, query: bool = False) -> tuple[Peaks, Hashes]:
    """Peaks and hashes of mono audio at :data:`SAMPLE_RATE`; reference (sparse) or query (dense, probing)."""
    check_audio(samples, sample_rate=SAMPLE_RATE)
    peak_params, hash_params = QUERY if query else REFERENCE
    peaks = find_peaks(log_spectrogram(samples), peak_params)
    return peaks, triplet_hashes(peaks, hash_params)


# -- helpers ---------------------------------------------------------------
@lru_cache(maxsize=1)
def _window() -> npt.NDArray[np.float32]:
    return np.hanning(N_FFT).astype(np.float32)


@lru_cache(maxsize=1)
def _filterbank() -> npt.NDArray[np.float32]:
    """Triangular filters centred on log-spaced frequencies, at least one FFT bin wide; (N_FFT//2+1, N_BINS)."""
    fft_hz = np.arange(N_FFT // 2 + 1) * SAMPLE_RATE / N_FFT
    centres = F_MIN * 2.0 ** (np.arange(N_BINS) / BINS_PER_OCTAVE)
    spacing = centres * (2.0 ** (1.0 / BINS_PER_OCTAVE) - 1.0)
    half_width = np.maximum(spacing, SAMPLE_RATE / N_FFT)
    weights = 1.0 - np.abs(fft_hz[:, None] - centres[None, :]) / half_width[None, :]
    weights = np.clip(weights, 0.0, None)
    weights /= weights.sum(axis=0, keepdims=True)
    return np.asarray(weights, dtype=np.float32)


def _parabolic(
    left: npt.NDArray[np.float32], mid: npt.NDArray[np.float32], right: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Sub-bin offset of a parabola's vertex through three points, in [-0.5, 0.5]."""
    denom = left - 2.0 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(denom < 0, 0.5 * (left - right) / denom, 0.0)
    return np.asarray(np.clip(np.nan_to_num(offset), -0.5, 0.5), dtype=np.float32)


def _strongest_per_block(
    ti: npt.NDArray[np.intp], level: npt.NDArray[np.float32], per_second: float
) -> npt.NDArray[np.intp]:
    """Indices of the strongest peaks per one-second block, ``per_second`` of them."""
    if ti.size == 0:
        return np.zeros(0, dtype=np.intp)
    block = (ti * FRAME_S).astype(np.int64)
    order = np.lexsort((-level, block))
    sorted_block = block[order]
    starts = np.searchsorted(sorted_block, sorted_block, side="left")
    rank = np.arange(order.size) - starts
    return np.sort(order[rank < round(per_second)])


def _next_neighbours(peaks: Peaks, params: HashParams) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For each anchor, the pairs (p2, p3) among its ``fanout`` next peaks within ``_DF_MAX`` bins and ``max_span``."""
    n = peaks.t.shape[0]
    lookahead = min(n - 1, params.fanout * 6)  # frequency filter drops some; look further than fanout
    idx = np.arange(n)[:, None] + np.arange(1, lookahead + 1)[None, :]
    valid = idx < n
    idx = np.minimum(idx, n - 1)
    df = np.abs(peaks.f[idx] - peaks.f[:, None])
    dt = peaks.t[idx] - peaks.t[:, None]
    valid &= (df <= _DF_MAX - 1.0) & (dt <= params.max_span) & (dt > 0)
    rank = np.cumsum(valid, axis=1)
    valid &= rank <= params.fanout
    rows, cols = np.nonzero(valid)
    # neighbours per anchor in time order: build all pairs (a < b) of the chosen columns
    counts = np.bincount(rows, minlength=n)
    pair_a, pair_b = np.triu_indices(params.fanout, k=1)
    anchors = np.repeat(np.arange(n), pair_a.size)
    a = np.tile(pair_a, n)
    b = np.tile(pair_b, n)
    have = b < counts[anchors]
    anchors, a, b = anchors[have], a[have], b[have]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    chosen = idx[rows, cols]
    second = np.stack([chosen[starts[anchors] + a], chosen[starts[anchors] + b]], axis=1)
    return anchors, second


def _quantise(
    fields: list[npt.NDArray[np.float32]], sizes: tuple[int, ...], margins: tuple[float, ...] | None
) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.intp]]:
    """Cell of each field; with ``margins``, also the neighbour cell of values near a boundary.

    Returns the cells per field and, per output row, the input row it came from.
    """
    cells = [np.clip(np.floor(v), 0, s - 1).astype(np.int64) for v, s in zip(fields, sizes, strict=True)]
    rows = np.arange(cells[0].shape[0])
    if margins is None:
        return cells, rows
    for d, (value, size, margin) in enumerate(zip(fields, sizes, margins, strict=True)):
        v = np.asarray(value)[rows]
        whole = np.floor(v)
        frac = v - whole
        inside = (whole >= 0) & (whole <= size - 1)
        lower = inside & (frac < margin) & (whole > 0)
        upper = inside & (frac > 1.0 - margin) & (whole < size - 1)
        near = np.nonzero(lower | upper)[0]
        if near.size == 0:
            continue
        extra = [c[near] for c in cells]
        extra[d] = extra[d] + np.where(upper[near], 1, -1)
        cells = [np.concatenate((c, e)) for c, e in zip(cells, extra, strict=True)]
        rows = np.concatenate((rows, rows[near]))
    return cells, rows


def _empty_hashes() -> Hashes:
    return Hashes(np.zeros(0, np.uint32), np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))


__all__ = [
    "BINS_PER_OCTAVE",
    "FRAME_S",
    "HASH_SPACE",
    "MIN_DURATION_S",
    "N_BINS",
    "SAMPLE_RATE",
    "HashParams",
    "Hashes",
    "PeakParams",
    "Peaks",
    "check_audio",
    "find_peaks",
    "fingerprint",
    "log_spectrogram",
    "triplet_hashes",
]
