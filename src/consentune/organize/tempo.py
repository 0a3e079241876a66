"""Global tempo from the onset-strength autocorrelation, with octave errors handled.

A candidate period P (frames) is scored by a comb over the autocorrelation
at P, 2P, 3P, 4P (a true beat period has peaks at all its multiples) and a
log-normal prior on tempo centred at 120 BPM.  The best candidate is then
compared with half and double its tempo: a metrical level whose own
autocorrelation peak is nearly as strong and whose prior is better wins,
which is what turns most "twice/half the tempo" errors into the annotated level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

MIN_BPM = 40.0
MAX_BPM = 240.0
_PRIOR_CENTRE_BPM = 120.0
_PRIOR_OCTAVES = 1.0


@dataclass(frozen=True, slots=True)
class TempoEstimate:
    bpm: float | None  # None when there is no periodic onset structure (silence, a steady tone)
    confidence: float  # 0..1, normalised autocorrelation at the chosen period


def _autocorrelation(envelope: npt.NDArray[np.float64], max_lag: int) -> npt.NDArray[np.float64]:
    n = envelope.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(envelope, size)
    ac = np.fft.irfft(spectrum * np.conj(spectrum), size)[: max_lag + 1]
    ac /= np.arange(n, n - max_lag - 1, -1).clip(min=1)  # unbiased: long lags are not penalised
    return ac / ac[0] if ac[0] > 0 else np.zeros_like(ac)


def _interp(ac: npt.NDArray[np.float64], lags: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.interp(lags, np.arange(ac.size), ac, right=0.0)


def _prior(bpm: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    octaves = np.log2(bpm / _PRIOR_CENTRE_BPM)
    return np.exp(-0.5 * (octaves / _PRIOR_OCTAVES) ** 2)


def estimate_tempo(onset: npt.NDArray[np.float32], *, frame_rate: float) -> TempoEstimate:
    """Tempo in BPM from an onset-strength envelope sampled at ``frame_rate`` frames per second."""
    envelope = onset.astype(np.float64)
    if envelope.size < frame_rate * 60.0 / MIN_BPM * 2 or not np.any(envelope > 0):
        return TempoEstimate(None, 0.0)
    # remove the slow trend (a local mean over ~1 s) so the autocorrelation sees pulses, not level
    width = max(3, round(frame_rate))
    trend = np.convolve(envelope, np.ones(width) / width, mode="same")
    envelope = np.maximum(envelope - trend, 0.0)
    if not np.any(envelope > 0):
        return TempoEstimate(None, 0.0)
    max_lag = min(envelope.size - 1, int(4 * frame_rate * 60.0 / MIN_BPM) + 2)
    ac = _autocorrelation(envelope - envelope.mean(), max_lag)
    grid = MIN_BPM * (MAX_BPM / MIN_BPM) ** np.linspace(0.0, 1.0, 1200)
    periods = frame_rate * 60.0 / grid
    comb = sum(_interp(ac, k * periods) / k for k in (1, 2, 3, 4))
    score = np.maximum(comb, 0.0) * _prior(grid)
    best = int(np.argmax(score))
    bpm = float(grid[best])
    strength = float(_interp(ac, np.array([frame_rate * 60.0 / bpm]))[0])
    for factor in (2.0, 0.5):
        other = bpm * factor
        if not MIN_BPM <= other <= MAX_BPM:
            continue
        other_strength = float(_interp(ac, np.array([frame_rate * 60.0 / other]))[0])
        better_prior = _prior(np.array([other]))[0] > _prior(np.array([bpm]))[0]
        if better_prior and other_strength >= 0.8 * strength:
            bpm, strength = other, other_strength
            break
    if strength <= 0.05:
        return TempoEstimate(None, max(strength, 0.0))
    return TempoEstimate(round(bpm, 2), min(1.0, strength))


__all__ = ["MAX_BPM", "MIN_BPM", "TempoEstimate", "estimate_tempo"]
