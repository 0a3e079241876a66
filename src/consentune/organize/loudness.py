"""Programme loudness per ITU-R BS.1770-4 / EBU R128: K-weighting, 400 ms blocks, two gates.

The K-weighting filters are derived for any sample rate from the analogue
prototype of BS.1770 (a high shelf then a high pass, bilinear transform); at
48 kHz they reproduce the coefficients printed in the recommendation.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.signal import sosfilt

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
_BLOCK_S = 0.4
_STEP_S = 0.1  # 75 % overlap
# channel weights for the 5.1 order L, R, C, LFE, Ls, Rs (LFE excluded); other layouts weigh 1.0
_WEIGHTS_51 = (1.0, 1.0, 1.0, 0.0, 1.41, 1.41)


def k_weighting(sample_rate: int) -> tuple[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]], ...]:
    """(b, a) of the two K-weighting biquads (shelf, high pass) at ``sample_rate`` Hz."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive Hz, got {sample_rate}")
    k = math.tan(math.pi * 1681.974450955533 / sample_rate)
    q = 0.7071752369554196
    vh = 10.0 ** (3.999843853973347 / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf_b = np.array([(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0])
    shelf_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    k = math.tan(math.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1.0 + k / q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    return (shelf_b, shelf_a), (hp_b, hp_a)


def integrated_loudness(samples: npt.NDArray[np.float32], sample_rate: int) -> float | None:
    """Gated integrated loudness in LUFS of ``samples`` shaped (frames,) or (frames, channels).

    Returns None when no 400 ms block passes the -70 LUFS absolute gate
    (silence, or audio shorter than one block).
    """
    audio = samples.astype(np.float64)
    if audio.ndim == 1:
        audio = audio[:, None]
    block = round(_BLOCK_S * sample_rate)
    step = round(_STEP_S * sample_rate)
    if audio.shape[0] < block:
        return None
    sections = np.array([np.concatenate([b, a]) for b, a in k_weighting(sample_rate)])
    audio = sosfilt(sections, audio, axis=0)
    n_blocks = 1 + (audio.shape[0] - block) // step
    # mean square per (block, channel) from a cumulative sum: O(frames), not O(frames * 4)
    cumulative = np.concatenate([np.zeros((1, audio.shape[1])), np.cumsum(audio**2, axis=0)])
    starts = np.arange(n_blocks) * step
    power = (cumulative[starts + block] - cumulative[starts]) / block
    channels = audio.shape[1]
    weights = np.array(_WEIGHTS_51[:channels] if channels in (5, 6) else (1.0,) * channels)
    if channels == 5:  # 5.0 without LFE: L, R, C, Ls, Rs
        weights = np.array([1.0, 1.0, 1.0, 1.41, 1.41])
    weighted = power @ weights
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(weighted)
    kept = weighted[block_lufs > ABSOLUTE_GATE_LUFS]
    if kept.size == 0:
        return None
    relative_gate = -0.691 + 10.0 * math.log10(kept.mean()) + RELATIVE_GATE_LU
    kept = weighted[(block_lufs > ABSOLUTE_GATE_LUFS) & (block_lufs > relative_gate)]
    return float(-0.691 + 10.0 * math.log10(kept.mean()))


def sample_peak_dbfs(samples: npt.NDArray[np.float32]) -> float | None:
    """Largest absolute sample in dBFS, None for digital silence."""
    peak = float(np.max(np.abs(samples), initial=0.0))
    return 20.0 * math.log10(peak) if peak > 0.0 else None


__all__ = ["ABSOLUTE_GATE_LUFS", "RELATIVE_GATE_LU", "integrated_loudness", "k_weighting", "sample_peak_dbfs"]
