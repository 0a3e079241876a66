"""An independent check of the claims bench's "unrelated" label: do two claimed ranges hold the same audio?

The corpus carries no truth about material shared between its files (one package may ship an old and
a new version of the same theme as two tracks), so a track the bench sampled as "unrelated" may really
share audio with an original.  A claim on such a track is re-examined with a method the claims engine
does not use: the log-magnitude spectrograms of the two claimed ranges, the copy's range stretched to
the original's length, compared frame by frame (Pearson correlation across frequency bins, median over
frames, best lag within ±1 s).  The null is the same score on random ranges of the same length taken
from two *different* unrelated tracks; a claim counts as shared audio only when its score is above
every null score and above :data:`SHARED_MIN`.

A second, waveform-level test catches what the spectral one misses: a track that *mixes* another
recording with new layers (a remaster, a medley, a remix over the same stems).  Its spectrogram differs,
but its waveform still correlates with the original's at the aligned lag, which two independent pieces
never do (:func:`recording_similarity`).  A claim also counts as shared audio when that score is above
every null score on the same pairs and above :data:`RECORDING_MIN`.  Anything else stays a false claim.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, correlate, sosfiltfilt, stft

from consentune.bench.identify_render import SOURCE_SR, decode_file

SHARED_MIN = 0.5  # a median frame correlation no pair of unrelated music reaches on its own
_NPERSEG = 2048
_HOP = 512
_BAND_HZ = (100.0, 5000.0)
_MAX_LAG_FRAMES = int(1.0 * SOURCE_SR / _HOP)
# Fixed from a corpus calibration before it scored any claim it decides: 158 null pairs of 12 tracks (10, 17
# and 60 s) reached at most 0.136 (p99 0.10); MP3 64k and ±3 % speed copies of 6 tracks 0.94-0.998.
RECORDING_MIN = 0.35
_BLOCK_S = 1.0  # waveform blocks, each allowed to drift ±10 ms from the clip's best lag
_DRIFT_S = 0.01
_HIGHPASS = butter(4, 200.0, btype="highpass", fs=SOURCE_SR, output="sos")  # bass notes align by chance


@dataclass(frozen=True)
class RangeCheck:
    score: float  # median per-frame spectral correlation at the best lag
    null_max: float  # the highest score among the null pairs
    recording: float  # median per-block waveform correlation at the best lag
    recording_null_max: float
    shared: bool


def _log_spectrogram(audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    freqs, _times, spec = stft(audio, fs=SOURCE_SR, nperseg=_NPERSEG, noverlap=_NPERSEG - _HOP, boundary=None)
    band = (freqs >= _BAND_HZ[0]) & (freqs <= _BAND_HZ[1])
    mag = np.abs(spec[band]).T  # frames × bins
    out: npt.NDArray[np.float64] = np.log1p(mag / (mag.mean() + 1e-12) * 10.0)
    return out


def _stretch(audio: npt.NDArray[np.float32], length: int) -> npt.NDArray[np.float32]:
    if len(audio) == length or len(audio) < 2:
        return audio
    positions = np.linspace(0.0, len(audio) - 1, length)
    return np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)


def similarity(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Median frame correlation of two equal-length clips at their best lag within ±1 s."""
    sa, sb = _log_spectrogram(a), _log_spectrogram(b)
    frames = min(len(sa), len(sb))
    if frames < 8:
        return 0.0
    # remove each clip's average spectrum (every piece of music shares a spectral tilt), keep its changes
    sa, sb = sa[:frames] - sa[:frames].mean(axis=0), sb[:frames] - sb[:frames].mean(axis=0)
    sa = (sa - sa.mean(axis=1, keepdims=True)) / (sa.std(axis=1, keepdims=True) + 1e-9)
    sb = (sb - sb.mean(axis=1, keepdims=True)) / (sb.std(axis=1, keepdims=True) + 1e-9)
    corr = (sa @ sb.T) / sa.shape[1]  # frame i of a against frame j of b
    best = -1.0
    for lag in range(-_MAX_LAG_FRAMES, _MAX_LAG_FRAMES + 1):
        diagonal = np.diagonal(corr, offset=-lag)  # pairs (i, i - lag)
        if len(diagonal) >= max(8, frames // 2):
            best = max(best, float(np.median(diagonal)))
    return best


def recording_similarity(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Median over 1-s blocks of the waveform correlation of ``b`` with ``a`` at their best lag (±1 s).

    Each block may drift ±10 ms, so a claimed range whose time scale is off by a few parts in ten thousand
    still lines up; silent blocks are skipped.
    """
    n = min(len(a), len(b))
    block, drift = int(_BLOCK_S * SOURCE_SR), int(_DRIFT_S * SOURCE_SR)
    if n < 4 * block + 2 * drift:
        return 0.0
    x = sosfiltfilt(_HIGHPASS, a[:n].astype(np.float64))
    y = sosfiltfilt(_HIGHPASS, b[:n].astype(np.float64))
    full = correlate(x, y, mode="full", method="fft")
    lags = np.arange(-n + 1, n)
    near = np.abs(lags) <= int(1.0 * SOURCE_SR)
    lag = int(lags[near][np.argmax(np.abs(full[near]))])
    floor = 1e-3 * float(np.sqrt(np.mean(x**2)) + 1e-12)
    scores = []
    for start in range(max(drift, drift - lag), n - block - drift - max(0, lag) + 1, block):
        part = y[start : start + block]
        window = x[start + lag - drift : start + lag + block + drift]
        if np.sqrt(np.mean(part**2)) < floor or np.sqrt(np.mean(window**2)) < floor:
            continue
        energy = np.concatenate([[0.0], np.cumsum(window**2)])
        norms = np.sqrt(energy[block:] - energy[:-block]) * np.linalg.norm(part) + 1e-12
        scores.append(float(np.max(np.abs(correlate(window, part, mode="valid", method="fft")) / norms)))
    return float(np.median(scores)) if len(scores) >= 4 else 0.0


def _clip(audio: npt.NDArray[np.float32], start_s: float, end_s: float) -> npt.NDArray[np.float32]:
    return audio[int(start_s * SOURCE_SR) : int(end_s * SOURCE_SR)]


class SharedAudioCheck:
    """Decodes each file once; scores claimed ranges against a null built from the unrelated tracks."""

    def __init__(self, unrelated: Sequence[Path], *, seed: int, null_pairs: int = 40) -> None:
        self._audio: dict[Path, npt.NDArray[np.float32]] = {}
        self._unrelated = list(unrelated)
        self._rng = random.Random(seed)
        self._null_pairs = null_pairs

    def _load(self, path: Path) -> npt.NDArray[np.float32]:
        if path not in self._audio:
            self._audio[path] = decode_file(path)
        return self._audio[path]

    def _null(self, length_s: float) -> list[tuple[float, float]]:
        """(spectral, recording) scores of random equal-length ranges of two different unrelated tracks."""
        usable = [p for p in self._unrelated if len(self._load(p)) / SOURCE_SR > length_s + 1.0]
        scores: list[tuple[float, float]] = []
        if len(usable) < 2:
            return scores
        for _ in range(self._null_pairs):
            p, q = self._rng.sample(usable, 2)
            a, b = self._load(p), self._load(q)
            sa = self._rng.uniform(0.0, len(a) / SOURCE_SR - length_s)
            sb = self._rng.uniform(0.0, len(b) / SOURCE_SR - length_s)
            ca, cb = _clip(a, sa, sa + length_s), _clip(b, sb, sb + length_s)
            scores.append((similarity(ca, cb), recording_similarity(ca, cb)))
        return scores

    def check(
        self, copy: Path, copy_range_s: tuple[float, float], original: Path, original_range_s: tuple[float, float]
    ) -> RangeCheck:
        orig = _clip(self._load(original), *original_range_s)
        dup = _stretch(_clip(self._load(copy), *copy_range_s), len(orig))
        score, recording = similarity(orig, dup), recording_similarity(orig, dup)
        null = self._null(len(orig) / SOURCE_SR)
        null_max = max((s for s, _r in null), default=float("inf"))
        recording_null_max = max((r for _s, r in null), default=float("inf"))
        shared = (score > null_max and score >= SHARED_MIN) or (
            recording > recording_null_max and recording >= RECORDING_MIN
        )
        return RangeCheck(score, null_max, recording, recording_null_max, shared)


__all__ = ["RECORDING_MIN", "SHARED_MIN", "RangeCheck", "SharedAudioCheck", "recording_similarity", "similarity"]
