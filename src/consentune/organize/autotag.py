"""Auto-tags (genre, mood, instrument) from musicnn, run in numpy: no TensorFlow, nothing downloaded.

musicnn (Pons & Serra, 2019; ISC licence, see ``data/MUSICNN-LICENSE.txt``)
ships its trained weights in its wheel.  ``tools/convert_musicnn.py`` turned
them, once, into ``data/musicnn_{mtt,msd}.npz``; this module is the model's
forward pass re-implemented in numpy.  Two differences from the upstream
package, both deliberate:

* the log-mel front end stays in float32 (upstream casts the mel power to
  float16 and then computes ``10000 * mel`` in float16, which overflows to
  ``inf`` wherever the mel power exceeds 6.55 — on most real music);
* every 3-s patch of the track is tagged (upstream's feature extractor
  repeats the first patch's embedding); past ``max_patches`` the patches are
  spread evenly over the whole track to bound the cost.

The validation against the original (same audio, TensorFlow) is in ``docs/organize.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

SR = 16_000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187  # 3 s: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
MODELS = ("mtt", "msd")
_BN_EPS = 1e-3  # tf.layers.batch_normalization default


@lru_cache(maxsize=1)
def _slaney_mel_filters() -> F32:
    """librosa-compatible mel filters (Slaney scale and area normalisation), shape (N_MELS, N_FFT // 2 + 1)."""

    def hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        linear = hz / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(hz >= 1000.0, log, linear)

    def mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        linear = mel * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
        return np.where(mel >= 15.0, log, linear)

    fft_freqs = np.fft.rfftfreq(N_FFT, 1.0 / SR)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(SR / 2.0)), N_MELS + 2))
    spacing = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / spacing[:-1, None]
    upper = ramps[2:] / spacing[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights.astype(np.float32)


def log_mel(samples: F32) -> F32:
    """musicnn's input: log10(1 + 10000 · mel power), float32, shape (frames, 96), from mono 16 kHz samples."""
    padded = np.pad(samples.astype(np.float32), N_FFT // 2)
    if padded.size < N_FFT:
        padded = np.pad(padded, (0, N_FFT - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)
    spectrum = np.fft.rfft(frames * window, axis=1)
    power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
    mel = power @ _slaney_mel_filters().T
    return np.asarray(np.log10(1.0 + 10_000.0 * mel), dtype=np.float32)


def patches(mel: F32, *, max_patches: int | None = None) -> F32:
    """Non-overlapping 3-s patches (n, 187, 96); short input is repeat-padded as in training."""
    if mel.shape[0] < PATCH_FRAMES:
        reps = -(-PATCH_FRAMES // max(1, mel.shape[0]))
        mel = np.tile(mel if mel.shape[0] else np.zeros((1, N_MELS), np.float32), (reps, 1))
    count = mel.shape[0] // PATCH_FRAMES
    starts = np.arange(count) * PATCH_FRAMES
    if max_patches is not None and count > max_patches:
        starts = starts[np.linspace(0, count - 1, max_patches).round().astype(int)]
    return np.stack([mel[s : s + PATCH_FRAMES] for s in starts]).astype(np.float32)


def _windows(x: F32, height: int, width: int) -> F32:
    """im2col for a (batch, time, freq) map: (batch, time', freq', height * width)."""
    view = np.lib.stride_tricks.sliding_window_view(x, (height, width), axis=(1, 2))
    return view.reshape(*view.shape[:3], height * width)


@dataclass(frozen=True)
class TagPrediction:
    labels: tuple[str, ...]
    probabilities: F32  # mean over patches, shape (labels,)
    taggram: F32  # per patch, shape (patches, labels)
    embedding: F32  # penultimate layer averaged over patches, shape (200,)

    def top(self, n: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities)[:n]
        return [(self.labels[i], float(self.probabilities[i])) for i in order]


class Musicnn:
    """The musicnn forward pass (inference mode: batch norm with moving statistics, no dropout)."""

    def __init__(self, weights: dict[str, F32], labels: tuple[str, ...]) -> None:
        self._w = {k: v.astype(np.float32) for k, v in weights.items()}
        self.labels = labels

    @classmethod
    def load(cls, name: str = "mtt") -> Musicnn:
        return _load(name)

    def _affine(self, index: int) -> tuple[F32, F32]:
        suffix = "" if index == 0 else f"_{index}"
        w = self._w
        scale = w[f"batch_normalization{suffix}/gamma"] / np.sqrt(
            w[f"batch_normalization{suffix}/moving_variance"] + _BN_EPS
        )
        shift = w[f"batch_normalization{suffix}/beta"] - w[f"batch_normalization{suffix}/moving_mean"] * scale
        return scale, shift

    def _bn(self, x: F32, index: int) -> F32:
        scale, shift = self._affine(index)
        return (x * scale + shift).astype(np.float32)

    def _bn_max_over_freq(self, x: F32, index: int) -> F32:
        """max over axis 2 of BN(x), without normalising the whole map: BN is monotonic per channel."""
        scale, shift = self._affine(index)
        extreme = np.where(scale >= 0, x.max(axis=2), x.min(axis=2))
        return np.asarray(extreme * scale + shift, dtype=np.float32)

    def _conv(self, windows: F32, index: int) -> F32:
        """ReLU(windows · kernel + bias); one 2-D BLAS product (a strided view would take numpy's slow loop)."""
        suffix = "" if index == 0 else f"_{index}"
        kernel = self._w[f"conv2d{suffix}/kernel"]
        flat = np.ascontiguousarray(windows).reshape(-1, windows.shape[-1])
        out = flat @ kernel.reshape(-1, kernel.shape[-1]) + self._w[f"conv2d{suffix}/bias"]
        return np.asarray(np.maximum(out, 0.0).reshape(*windows.shape[:-1], kernel.shape[-1]), dtype=np.float32)

    def _dense(self, x: F32, index: int) -> F32:
        suffix = "" if index == 0 else f"_{index}"
        return (x @ self._w[f"dense{suffix}/kernel"] + self._w[f"dense{suffix}/bias"]).astype(np.float32)

    def forward(self, batch: F32) -> tuple[F32, F32]:
        """Logits (n, labels) and penultimate features (n, 200) for patches shaped (n, 187, 96)."""
        x = self._bn(batch.astype(np.float32), 0)
        padded = np.pad(x, ((0, 0), (3, 3), (0, 0)))
        front = [
            self._bn_max_over_freq(self._conv(_windows(padded, 7, 38), 0), 1),  # timbral, 7 x 38
            self._bn_max_over_freq(self._conv(_windows(padded, 7, 67), 1), 2),  # timbral, 7 x 67
        ]
        for conv, bn, length in ((2, 3, 128), (3, 4, 64), (4, 5, 32)):  # temporal, 'same' padding in time
            before = (length - 1) // 2
            same = np.pad(x, ((0, 0), (before, length - 1 - before), (0, 0)))
            view = np.lib.stride_tricks.sliding_window_view(same, length, axis=1)  # (n, T, 96, length)
            front.append(self._bn_max_over_freq(self._conv(view, conv), bn))
        frontend = np.concatenate(front, axis=2)  # (n, T, 561)
        mid1 = self._bn(self._conv(_windows(np.pad(frontend, ((0, 0), (3, 3), (0, 0))), 7, 561)[:, :, 0], 5), 6)
        mid2 = self._bn(self._conv(_windows(np.pad(mid1, ((0, 0), (3, 3), (0, 0))), 7, 64)[:, :, 0], 6), 7) + mid1
        mid3 = self._bn(self._conv(_windows(np.pad(mid2, ((0, 0), (3, 3), (0, 0))), 7, 64)[:, :, 0], 7), 8) + mid2
        features = np.concatenate([frontend, mid1, mid2, mid3], axis=2)  # (n, T, 753)
        pooled = np.stack([features.max(axis=1), features.mean(axis=1)], axis=2).reshape(len(batch), -1)
        hidden = self._bn(np.maximum(self._dense(self._bn(pooled, 9), 0), 0.0), 10)
        return self._dense(hidden, 1), hidden

    def predict(self, samples: F32, sample_rate: int, *, max_patches: int | None = 16, batch: int = 8) -> TagPrediction:
        """Tags of mono ``samples`` (must be at 16 kHz: decode with ``target_sr=16000``)."""
        if sample_rate != SR:
            raise ValueError(f"musicnn needs {SR} Hz audio, got {sample_rate} Hz")
        chunks = patches(log_mel(samples), max_patches=max_patches)
        logits, hidden = [], []
        for start in range(0, len(chunks), batch):
            out, penultimate = self.forward(chunks[start : start + batch])
            logits.append(out)
            hidden.append(penultimate)
        taggram = 1.0 / (1.0 + np.exp(-np.concatenate(logits)))
        return TagPrediction(
            self.labels,
            taggram.mean(axis=0).astype(np.float32),
            taggram.astype(np.float32),
            np.concatenate(hidden).mean(axis=0).astype(np.float32),
        )


@lru_cache(maxsize=2)
def _load(name: str) -> Musicnn:
    if name not in MODELS:
        raise ValueError(f"unknown musicnn model {name!r}; use one of {MODELS}")
    path = resources.files("consentune.organize").joinpath(f"data/musicnn_{name}.npz")
    with path.open("rb") as handle, np.load(handle) as data:
        weights = {k: data[k] for k in data.files if k != "labels"}
        labels = tuple(json.loads(bytes(data["labels"]).decode()))
    return Musicnn(weights, labels)


__all__ = ["MODELS", "N_MELS", "PATCH_FRAMES", "SR", "Musicnn", "TagPrediction", "log_mel", "patches"]
