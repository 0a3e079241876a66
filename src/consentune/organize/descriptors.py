"""Descriptors of one decoded track: tempo, key, loudness, duration and an embedding.

:func:`analyze` takes samples exactly as the gate decodes them and returns
a :class:`Descriptors`; :meth:`Descriptors.to_bytes`/:meth:`from_bytes` are
the stored form (a gate feature under ``organize``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from consentune.errors import InvalidInput
from consentune.organize.dsp import (
    ANALYSIS_SR,
    chromagram,
    frame_rate,
    log_mel,
    onset_strength,
    power_spectrogram,
)
from consentune.organize.embedding import EMBEDDING_DIM, embed
from consentune.organize.key import estimate_key
from consentune.organize.loudness import integrated_loudness, sample_peak_dbfs
from consentune.organize.tempo import estimate_tempo

FEATURE_KIND = "organize.descriptors.v1"
MAX_ANALYSIS_S = 120.0  # tempo, key and embedding look at the middle 2 minutes; loudness at everything
AUTOTAG_PATCHES = 8  # 3-s patches spread evenly over the whole track (all of them when fewer)
_SILENCE_DBFS = -90.0


@dataclass(frozen=True)
class Descriptors:
    duration_s: float
    tempo_bpm: float | None
    tempo_confidence: float
    key: str | None  # e.g. "A minor"
    key_tonic: int | None  # pitch class, C = 0
    key_mode: str | None
    key_confidence: float
    loudness_lufs: float | None  # None: silence or shorter than 400 ms
    peak_dbfs: float | None
    silent: bool
    embedding: tuple[float, ...]
    # musicnn (MagnaTagATune) tag probabilities, averaged over up to AUTOTAG_PATCHES 3-s patches
    autotags: dict[str, float] | None = None

    def vector(self) -> npt.NDArray[np.float32]:
        return np.asarray(self.embedding, np.float32)

    def top_tags(self, *, n: int = 5, min_probability: float = 0.1) -> list[tuple[str, float]]:
        """The most probable auto-tags, best first."""
        ranked = sorted((self.autotags or {}).items(), key=lambda kv: -kv[1])
        return [(tag, p) for tag, p in ranked[:n] if p >= min_probability]

    def summary(self) -> dict[str, object]:
        """Everything but the embedding, for JSON responses and tables."""
        data = asdict(self)
        del data["embedding"]
        return data

    def to_bytes(self) -> bytes:
        """A JSON header (length-prefixed) followed by the float32 embedding."""
        header = json.dumps(self.summary(), sort_keys=True).encode()
        return struct.pack(">I", len(header)) + header + self.vector().astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Descriptors:
        (size,) = struct.unpack(">I", data[:4])
        header = json.loads(data[4 : 4 + size])
        vector = np.frombuffer(data[4 + size :], dtype="<f4")
        return cls(**header, embedding=tuple(float(x) for x in vector))


def _to_mono_analysis_rate(samples: npt.NDArray[np.float32], sample_rate: int) -> npt.NDArray[np.float32]:
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if sample_rate != ANALYSIS_SR:
        from math import gcd

        step = gcd(sample_rate, ANALYSIS_SR)
        mono = resample_poly(mono, ANALYSIS_SR // step, sample_rate // step)
    return np.asarray(mono, np.float32)


def _middle(samples: npt.NDArray[np.float32], sample_rate: int) -> npt.NDArray[np.float32]:
    """The middle MAX_ANALYSIS_S seconds, cut before resampling so long tracks cost no more."""
    keep = int(MAX_ANALYSIS_S * sample_rate)
    if samples.shape[0] <= keep:
        return samples
    start = (samples.shape[0] - keep) // 2
    return samples[start : start + keep]


def _autotags(samples: npt.NDArray[np.float32], sample_rate: int) -> dict[str, float]:
    """musicnn tags of up to AUTOTAG_PATCHES 3-s patches spread over the track; only those are resampled."""
    from math import gcd

    from consentune.organize.autotag import SR, Musicnn

    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    step = gcd(sample_rate, SR)
    patch_s, duration_s = 3.0, mono.size / sample_rate
    count = int(duration_s // patch_s)
    if count <= AUTOTAG_PATCHES:
        pieces = [mono]
    else:  # evenly spread patch starts, each resampled with 0.1 s of context either side
        starts = np.linspace(0, count - 1, AUTOTAG_PATCHES).round() * patch_s
        pieces = [mono[max(0, int((t - 0.1) * sample_rate)) : int((t + patch_s + 0.1) * sample_rate)] for t in starts]
    model = Musicnn.load("mtt")
    taggrams = []
    for piece in pieces:
        low = np.asarray(resample_poly(piece, SR // step, sample_rate // step), np.float32)
        taggrams.append(model.predict(low, SR, max_patches=AUTOTAG_PATCHES).taggram)
    probabilities = np.concatenate(taggrams).mean(axis=0)
    return {tag: round(float(p), 4) for tag, p in zip(model.labels, probabilities, strict=True)}


def analyze(samples: npt.NDArray[np.float32], sample_rate: int, *, autotag: bool = True) -> Descriptors:
    """Descriptors of samples shaped (frames,) or (frames, channels) at ``sample_rate`` Hz.

    ``autotag`` adds musicnn tag probabilities (about 0.15 s of CPU per 3-s patch, at most
    ``AUTOTAG_PATCHES`` patches); silence gets none.
    """
    if sample_rate <= 0 or samples.ndim not in (1, 2) or samples.shape[0] == 0:
        raise InvalidInput(
            f"cannot analyse audio of shape {samples.shape} at {sample_rate} Hz",
            hint="pass decoded samples shaped (frames,) or (frames, channels) with a positive sample rate",
        )
    duration = samples.shape[0] / sample_rate
    peak = sample_peak_dbfs(samples)
    silent = peak is None or peak < _SILENCE_DBFS
    loudness = None if silent else integrated_loudness(samples, sample_rate)
    mono = _to_mono_analysis_rate(_middle(samples, sample_rate), sample_rate)
    power = power_spectrogram(mono)
    mel_db = log_mel(power)
    onset = onset_strength(mel_db)
    chroma = chromagram(mono)
    tempo = estimate_tempo(onset, frame_rate=frame_rate()) if not silent else None
    key = estimate_key(chroma) if not silent else None
    vector = embed(power=power, mel_db=mel_db, chroma=chroma, onset=onset)
    assert vector.shape == (EMBEDDING_DIM,)
    return Descriptors(
        duration_s=round(duration, 3),
        tempo_bpm=tempo.bpm if tempo else None,
        tempo_confidence=round(tempo.confidence, 3) if tempo else 0.0,
        key=key.name if key else None,
        key_tonic=key.tonic if key else None,
        key_mode=key.mode if key else None,
        key_confidence=round(key.confidence, 3) if key else 0.0,
        loudness_lufs=None if loudness is None else round(loudness, 2),
        peak_dbfs=None if peak is None else round(peak, 2),
        silent=silent,
        embedding=tuple(float(x) for x in vector),
        autotags=_autotags(samples, sample_rate) if autotag and not silent else None,
    )


__all__ = ["FEATURE_KIND", "MAX_ANALYSIS_S", "Descriptors", "analyze"]
