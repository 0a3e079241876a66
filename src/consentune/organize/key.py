"""Key and mode from a time-averaged chroma vector and 24 rotated key profiles.

Profiles are pitch-class weights for a tonic at index 0 (C): the probe-tone
ratings of Krumhansl & Kessler (1982) and Temperley's corpus-derived
weights (2001).  The key is the rotation with the highest Pearson
correlation; the default averages the correlations of both profile sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

PROFILES: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "krumhansl": (
        (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
        (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    ),
    "temperley": (
        (5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0),
        (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0),
    ),
}


@dataclass(frozen=True, slots=True)
class KeyEstimate:
    tonic: int | None  # pitch class 0..11 (C = 0); None when there is no pitched content
    mode: str | None  # "major" or "minor"
    confidence: float  # best correlation minus the runner-up, 0..2

    @property
    def name(self) -> str | None:
        """E.g. ``"A minor"``."""
        return None if self.tonic is None else f"{PITCH_CLASSES[self.tonic]} {self.mode}"


def key_correlations(chroma_mean: npt.NDArray[np.float64], *, profiles: str = "both") -> npt.NDArray[np.float64]:
    """Pearson correlation with each key, shape (24,): 0..11 major on C..B, 12..23 minor on C..B."""
    names = list(PROFILES) if profiles == "both" else [profiles]
    if any(n not in PROFILES for n in names):
        raise ValueError(f"unknown key profile {profiles!r}; use one of {[*PROFILES, 'both']}")
    x = chroma_mean - chroma_mean.mean()
    out = np.zeros(24)
    for name in names:
        for m, profile in enumerate(PROFILES[name]):
            p = np.asarray(profile)
            rotations = np.stack([np.roll(p, tonic) for tonic in range(12)])
            rotations = rotations - rotations.mean(axis=1, keepdims=True)
            denom = np.linalg.norm(rotations, axis=1) * max(float(np.linalg.norm(x)), 1e-12)
            out[m * 12 : m * 12 + 12] += rotations @ x / denom
    return out / len(names)


def estimate_key(chroma: npt.NDArray[np.float32], *, profiles: str = "both") -> KeyEstimate:
    """Key from a chromagram shaped (frames, 12); silent or unpitched input gives ``tonic=None``."""
    if chroma.size == 0:
        return KeyEstimate(None, None, 0.0)
    mean = chroma.astype(np.float64).mean(axis=0)
    if mean.max() <= 1e-6 or mean.std() < 1e-3 * mean.max():
        return KeyEstimate(None, None, 0.0)
    corr = key_correlations(mean, profiles=profiles)
    order = np.argsort(corr)[::-1]
    best = int(order[0])
    return KeyEstimate(best % 12, "major" if best < 12 else "minor", float(corr[order[0]] - corr[order[1]]))


def mirex_key_score(estimated: tuple[int, str], reference: tuple[int, str]) -> float:
    """MIREX weighting: same key 1, a fifth above 0.5, relative 0.3, parallel 0.2, else 0."""
    (est_tonic, est_mode), (ref_tonic, ref_mode) = estimated, reference
    if est_tonic == ref_tonic and est_mode == ref_mode:
        return 1.0
    if est_mode == ref_mode and (est_tonic - ref_tonic) % 12 == 7:
        return 0.5
    if ref_mode == "major" and est_mode == "minor" and (ref_tonic - est_tonic) % 12 == 3:
        return 0.3
    if ref_mode == "minor" and est_mode == "major" and (est_tonic - ref_tonic) % 12 == 3:
        return 0.3
    if est_tonic == ref_tonic:
        return 0.2
    return 0.0


__all__ = ["PITCH_CLASSES", "PROFILES", "KeyEstimate", "estimate_key", "key_correlations", "mirex_key_score"]
