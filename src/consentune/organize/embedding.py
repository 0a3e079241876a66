"""A fixed-length timbre/harmony summary of a track for similarity search.

Statistics over frames of: 20 MFCCs (mean, std), their frame-to-frame change
(std), 12 chroma bins (mean, std), spectral centroid, bandwidth, rolloff,
flatness (mean, std, in octaves above 50 Hz or log units so they are scale-free),
octave-band spectral contrast (mean), and onset strength (mean, std).
Dimensions differ in scale; the similarity index standardises them across
the catalogue before comparing (see :mod:`consentune.organize.similar`).
"""

from __future__ import annotations

import itertools

import numpy as np

from consentune.organize.dsp import ANALYSIS_SR, F32, N_FFT, dct_ii

N_MFCC = 20
_CONTRAST_EDGES_HZ = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 11_025.0)
EMBEDDING_DIM = N_MFCC * 3 + 24 + 8 + (len(_CONTRAST_EDGES_HZ) - 1) + 2


def _spectral_shape(power: F32) -> F32:
    """Per-frame centroid, bandwidth, 85 % rolloff (octaves above 50 Hz) and flatness (log10), shape (frames, 4)."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / ANALYSIS_SR).astype(np.float32)
    mag = np.sqrt(power) + 1e-10
    total = mag.sum(axis=1)
    centroid = (mag @ freqs) / total
    bandwidth = np.sqrt((mag * (freqs[None, :] - centroid[:, None]) ** 2).sum(axis=1) / total)
    cumulative = np.cumsum(mag, axis=1)
    rolloff = freqs[np.minimum((cumulative < 0.85 * total[:, None]).sum(axis=1), freqs.size - 1)]
    flatness = np.mean(np.log10(power + 1e-10), axis=1) - np.log10(np.mean(power + 1e-10, axis=1))

    def octaves(hz: F32) -> F32:
        return np.log2(np.maximum(hz, 50.0) / 50.0)

    return np.stack([octaves(centroid), octaves(bandwidth), octaves(rolloff), flatness], axis=1).astype(np.float32)


def _contrast(power: F32) -> F32:
    """Peak-minus-valley (dB) per octave band, mean over frames, shape (7,)."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / ANALYSIS_SR)
    db = 10.0 * np.log10(power + 1e-10)
    out = []
    for lo, hi in itertools.pairwise(_CONTRAST_EDGES_HZ):
        band = np.sort(db[:, (freqs >= lo) & (freqs < hi)], axis=1)
        k = max(1, band.shape[1] // 5)
        out.append(float(np.mean(band[:, -k:].mean(axis=1) - band[:, :k].mean(axis=1))))
    return np.asarray(out, np.float32)


def embed(*, power: F32, mel_db: F32, chroma: F32, onset: F32) -> F32:
    """The embedding of one track, shape (EMBEDDING_DIM,), float32 (zeros for empty input)."""
    if power.shape[0] == 0:
        return np.zeros(EMBEDDING_DIM, np.float32)
    mfcc = dct_ii(mel_db, N_MFCC)
    delta = np.diff(mfcc, axis=0) if mfcc.shape[0] > 1 else np.zeros_like(mfcc)
    shape = _spectral_shape(power)
    chroma = chroma if chroma.shape[0] else np.zeros((1, 12), np.float32)
    parts = [
        mfcc.mean(axis=0),
        mfcc.std(axis=0),
        delta.std(axis=0),
        chroma.mean(axis=0),
        chroma.std(axis=0),
        shape.mean(axis=0),
        shape.std(axis=0),
        _contrast(power),
        np.array([onset.mean(), onset.std()], np.float32),
    ]
    vector = np.concatenate(parts).astype(np.float32)
    return np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)


__all__ = ["EMBEDDING_DIM", "embed"]
