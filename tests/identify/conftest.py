"""Synthetic songs at the fingerprint rate, and transforms with known answers."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy.signal import resample_poly

from consentune.demo.synth import STYLES, SongSpec, synthesize
from consentune.identify import SAMPLE_RATE


def song(seed: int, duration_s: float = 24.0) -> npt.NDArray[np.float32]:
    """Mono synthetic music at the fingerprint rate."""
    stereo = synthesize(SongSpec(seed=seed, duration_s=duration_s, sample_rate=16_000))
    return np.asarray(resample_poly(stereo.mean(axis=1), 1, 2), dtype=np.float32)


def styled_song(seed: int, duration_s: float = 100.0) -> npt.NDArray[np.float32]:
    """Mono synthetic music at the fingerprint rate in a style picked by the seed (one style's songs share drums)."""
    spec = SongSpec(seed=seed, duration_s=duration_s, sample_rate=SAMPLE_RATE, style=STYLES[seed % len(STYLES)])
    return np.asarray(synthesize(spec).mean(axis=1), dtype=np.float32)


def crossfaded(parts: list[npt.NDArray[np.float32]], fade_s: float = 10.0) -> npt.NDArray[np.float32]:
    """Parts played back to back, each crossfading into the next over ``fade_s`` seconds (equal power)."""
    n = int(fade_s * SAMPLE_RATE)
    ramp = np.sin(np.linspace(0.0, np.pi / 2, n)).astype(np.float32)
    out = parts[0].copy()
    for part in parts[1:]:
        incoming = part.copy()
        incoming[:n] *= ramp
        out[-n:] *= ramp[::-1]
        out[-n:] += incoming[:n]
        out = np.concatenate([out, incoming[n:]])
    return out


def speed_up(samples: npt.NDArray[np.float32], up: int, down: int) -> npt.NDArray[np.float32]:
    """Resample so the audio plays ``down / up`` times faster (pitch and tempo together)."""
    return np.asarray(resample_poly(samples, up, down), dtype=np.float32)


def pitch_shift(samples: npt.NDArray[np.float32], semitones: float) -> npt.NDArray[np.float32]:
    """Move every frequency by ``semitones`` and keep the timing: STFT bins remapped, overlap-added back."""
    factor = 2.0 ** (semitones / 12.0)
    n, hop = 1024, 256
    window = np.hanning(n)
    frames = np.lib.stride_tricks.sliding_window_view(samples, n)[::hop] * window
    spec = np.fft.rfft(frames, axis=1)
    source = np.arange(spec.shape[1]) / factor  # output bin k takes input bin k / factor
    low = np.clip(np.floor(source).astype(int), 0, spec.shape[1] - 1)
    high = np.clip(low + 1, 0, spec.shape[1] - 1)
    frac = source - np.floor(source)
    moved = spec[:, low] * (1 - frac) + spec[:, high] * frac
    # phases must advance at the new frequencies for the partials to stay coherent across frames
    moved *= np.exp(
        1j * 2 * np.pi * np.arange(spec.shape[1]) * (factor - 1) * hop * np.arange(spec.shape[0])[:, None] / n
    )
    out = np.zeros(samples.shape[0])
    norm = np.zeros(samples.shape[0])
    for i, frame in enumerate(np.fft.irfft(moved, n, axis=1)):
        out[i * hop : i * hop + n] += frame * window
        norm[i * hop : i * hop + n] += window**2
    return np.asarray(out / np.maximum(norm, 1e-3), dtype=np.float32)


@pytest.fixture(scope="session")
def songs() -> dict[int, npt.NDArray[np.float32]]:
    return {seed: song(seed) for seed in (11, 12, 13, 14)}


__all__ = ["SAMPLE_RATE", "crossfaded", "pitch_shift", "song", "speed_up", "styled_song"]
