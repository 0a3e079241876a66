"""Small spectral front end shared by every descriptor: STFT, mel, chroma, onset strength.

Pure functions on float32 arrays.  Samples are mono at ``ANALYSIS_SR`` Hz;
frame ``i`` is centred at ``i * HOP / ANALYSIS_SR`` seconds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

ANALYSIS_SR = 22_050
N_FFT = 2048
HOP = 512
N_MELS = 64


def frame_rate() -> float:
    """Analysis frames per second."""
    return ANALYSIS_SR / HOP


def power_spectrogram(samples: F32, *, n_fft: int = N_FFT, hop: int = HOP) -> F32:
    """|STFT|² with a Hann window, shape (frames, n_fft // 2 + 1); centred (reflect-padded) frames."""
    pad = n_fft // 2
    padded = np.pad(samples.astype(np.float32), pad, mode="reflect" if samples.size > pad else "constant")
    if padded.size < n_fft:
        padded = np.pad(padded, (0, n_fft - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    window = np.hanning(n_fft + 1)[:-1].astype(np.float32)
    spectrum = np.fft.rfft(frames * window, axis=1)
    return (spectrum.real**2 + spectrum.imag**2).astype(np.float32)


def _hz_to_mel(hz: F64) -> F64:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: F64) -> F64:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@lru_cache(maxsize=4)
def mel_filterbank(n_mels: int = N_MELS, *, fmin: float = 30.0, fmax: float = 11_025.0) -> F32:
    """Area-normalised triangular mel filters, shape (N_FFT // 2 + 1, n_mels)."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / ANALYSIS_SR)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(fmin)), _hz_to_mel(np.array(fmax)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    return np.ascontiguousarray(weights.T, dtype=np.float32)


def log_mel(power: F32, n_mels: int = N_MELS) -> F32:
    """Log-compressed mel energies in dB (floored 80 dB below the loudest), shape (frames, n_mels)."""
    mel = power @ mel_filterbank(n_mels)
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    floor = float(db.max(initial=-100.0)) - 80.0
    return np.asarray(np.maximum(db, floor), dtype=np.float32)


# chroma needs finer frequency resolution than the mel front end: a semitone at 65 Hz is 3.9 Hz wide
CHROMA_SR = ANALYSIS_SR // 2
CHROMA_N_FFT = 8192
CHROMA_HOP = 2048


@lru_cache(maxsize=2)
def chroma_matrix(*, fmin: float = 55.0, fmax: float = 2000.0) -> F32:
    """Maps STFT bins (CHROMA_N_FFT at CHROMA_SR) to 12 pitch classes (C=0), triangular around each semitone."""
    freqs = np.fft.rfftfreq(CHROMA_N_FFT, 1.0 / CHROMA_SR)
    out = np.zeros((freqs.size, 12), np.float32)
    valid = (freqs >= fmin) & (freqs <= fmax)
    midi = 69.0 + 12.0 * np.log2(freqs[valid] / 440.0)
    nearest = np.round(midi)
    weight = np.maximum(0.0, 1.0 - 2.0 * np.abs(midi - nearest))
    rows = np.flatnonzero(valid)
    out[rows, (nearest.astype(int) % 12)] = weight
    return out


def chromagram(samples: F32) -> F32:
    """Pitch-class energy per frame of mono ``samples`` at ANALYSIS_SR, shape (frames, 12).

    Each frame is scaled to max 1; silent frames are 0.  Frames are CHROMA_HOP / CHROMA_SR s apart.
    """
    from scipy.signal import resample_poly

    low = resample_poly(samples, 1, ANALYSIS_SR // CHROMA_SR).astype(np.float32)
    power = power_spectrogram(low, n_fft=CHROMA_N_FFT, hop=CHROMA_HOP)
    energy = np.sqrt(power) @ chroma_matrix()
    energy = np.log1p(100.0 * energy / max(float(energy.max(initial=0.0)), 1e-9))
    peak = energy.max(axis=1, keepdims=True)
    return np.where(peak > 1e-6, energy / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


def onset_strength(mel_db: F32) -> F32:
    """Spectral flux on the log-mel spectrogram: mean positive band difference per frame, shape (frames,)."""
    if mel_db.shape[0] < 2:
        return np.zeros(mel_db.shape[0], np.float32)
    flux = np.maximum(0.0, np.diff(mel_db, axis=0)).mean(axis=1)
    return np.concatenate([[0.0], flux]).astype(np.float32)


def dct_ii(x: F32, n_coeffs: int) -> F32:
    """Orthonormal DCT-II along the last axis, first ``n_coeffs`` coefficients (MFCCs from log-mel)."""
    n = x.shape[-1]
    k = np.arange(n_coeffs)[:, None]
    basis = np.cos(np.pi * k * (2 * np.arange(n)[None, :] + 1) / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return np.asarray(x @ basis.T.astype(np.float32), dtype=np.float32)


__all__ = [
    "ANALYSIS_SR",
    "HOP",
    "N_FFT",
    "N_MELS",
    "chroma_matrix",
    "chromagram",
    "dct_ii",
    "frame_rate",
    "log_mel",
    "mel_filterbank",
    "onset_strength",
    "power_spectrogram",
]
