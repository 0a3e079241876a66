"""Synthetic signals with known answers: click tracks, chord progressions, sines at known levels."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def click_track(bpm: float, *, seconds: float = 12.0, sr: int = 22_050, seed: int = 0) -> F32:
    """A noise burst (5 ms, decaying) on every beat; accents on each bar's downbeat."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * sr), np.float32)
    burst = int(0.005 * sr)
    envelope = np.exp(-np.arange(burst) / (burst / 4)).astype(np.float32)
    for k in range(int(seconds * bpm / 60.0)):
        start = round(k * 60.0 / bpm * sr)
        if start + burst > out.size:
            break
        gain = 0.6 if k % 4 == 0 else 0.35
        out[start : start + burst] += gain * envelope * rng.standard_normal(burst).astype(np.float32)
    return out


def _tone(midi: int, seconds: float, sr: int) -> F32:
    t = np.arange(int(seconds * sr)) / sr
    hz = 440.0 * 2.0 ** ((midi - 69) / 12.0)
    fade = np.minimum(1.0, np.minimum(t / 0.01, (seconds - t) / 0.05))
    return (fade * sum(np.sin(2 * np.pi * hz * h * t) / h**1.5 for h in (1, 2, 3, 4))).astype(np.float32)


def progression(tonic: int, mode: str, *, repeats: int = 3, sr: int = 22_050) -> F32:
    """I-IV-V-I (major) or i-iv-V-i (minor) in root position with the root in the bass, 1 s per chord."""
    third = 4 if mode == "major" else 3
    chords = [(0, third, 7), (5, 5 + (4 if mode == "major" else 3), 12), (7, 11, 14), (0, third, 7)]
    root = 48 + tonic
    audio = [sum((_tone(root + i, 1.0, sr) for i in chord), _tone(root - 12 + chord[0], 1.0, sr)) for chord in chords]
    return (0.08 * np.concatenate(audio * repeats)).astype(np.float32)


def sine(hz: float, dbfs: float, *, seconds: float = 5.0, sr: int = 48_000, channels: int = 2) -> F32:
    t = np.arange(int(seconds * sr)) / sr
    wave = (10 ** (dbfs / 20.0) * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return wave if channels == 1 else np.repeat(wave[:, None], channels, axis=1)
