"""Per-account behaviour: running, decayed statistics in arrays indexed by dense account id.

Each batch updates, per account, exponentially decayed counts (half a day's
memory by default, so a hijacked account's recent behaviour outweighs its
organic past): plays, plays that stopped 30–36 s in (just past the royalty
threshold), loops (the same track again right after itself), and the mean
and spread of short gaps between plays; plus a slowly decaying hour-of-day
histogram and the account's age at its first play.  ``evidence`` turns them
into per-signal values in [0, 1] and one behaviour score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from consentune.fraud.encode import F64, I32, EventBatch

SESSION_GAP_S = 1800.0  # gaps longer than this separate sessions and are not "gaps between plays"
THRESHOLD_LOW_MS = 30_000
THRESHOLD_HIGH_MS = 36_000

# signal name -> weight in the noisy-or behaviour score
SIGNAL_WEIGHTS: dict[str, float] = {
    "threshold_30s": 0.75,
    "loops": 0.55,
    "regular_gaps": 0.55,
    "rate": 0.5,
    "flat_diurnal": 0.35,
    "young_account": 0.2,
    "burst_creation": 0.6,
    "shared_device": 0.5,
}


def ramp(x: F64, lo: float, hi: float) -> F64:
    """0 at ``lo``, 1 at ``hi`` (either order), linear between, clipped."""
    out: F64 = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return out


@dataclass(frozen=True)
class BehaviourConfig:
    memory_s: float = 12 * 3600.0  # time constant of the decayed counts
    diurnal_memory_s: float = 7 * 86400.0
    young_account_s: float = 86400.0


class AccountState:
    """Running statistics for every account seen so far (arrays grow by doubling)."""

    _FAST = ("n", "n30", "nloop", "ngap", "sgap", "sgap2")

    def __init__(self, config: BehaviourConfig | None = None) -> None:
        self.config = config or BehaviourConfig()
        self.size = 0
        cap = 1024
        self.last_t: F64 = np.full(cap, np.nan)
        self.last_track: I32 = np.full(cap, -1, dtype=np.int32)
        self.first_t: F64 = np.full(cap, np.nan)
        self.created: F64 = np.full(cap, np.nan)
        self.upd_t: F64 = np.full(cap, np.nan)
        self.total: npt.NDArray[np.int64] = np.zeros(cap, dtype=np.int64)
        self.fast: dict[str, F64] = {name: np.zeros(cap) for name in self._FAST}
        self.hours: F64 = np.zeros((cap, 24))

    def _grow(self, needed: int) -> None:
        cap = self.last_t.shape[0]
        if needed <= cap:
            return
        new = max(needed, cap * 2)

        def grow(a: npt.NDArray[np.generic], fill: object) -> npt.NDArray[np.generic]:
            out = np.full((new, *a.shape[1:]), fill, dtype=a.dtype)
            out[:cap] = a
            return out

        self.last_t = grow(self.last_t, np.nan)  # type: ignore[assignment]
        self.last_track = grow(self.last_track, -1)  # type: ignore[assignment]
        self.first_t = grow(self.first_t, np.nan)  # type: ignore[assignment]
        self.created = grow(self.created, np.nan)  # type: ignore[assignment]
        self.upd_t = grow(self.upd_t, np.nan)  # type: ignore[assignment]
        self.total = grow(self.total, 0)  # type: ignore[assignment]
        self.fast = {k: grow(v, 0.0) for k, v in self.fast.items()}  # type: ignore[misc]
        self.hours = grow(self.hours, 0.0)  # type: ignore[assignment]

    def update(self, batch: EventBatch) -> None:
        """Fold a batch (any order) into the running state; vectorised over the batch."""
        if len(batch) == 0:
            return
        self._grow(int(batch.user.max()) + 1)
        self.size = max(self.size, int(batch.user.max()) + 1)
        order = np.lexsort((batch.t, batch.user))
        u, tr, t, ms = batch.user[order], batch.track[order], batch.t[order], batch.ms[order]
        first = np.ones(len(u), dtype=bool)
        first[1:] = u[1:] != u[:-1]
        prev_t = np.empty_like(t)
        prev_t[1:] = t[:-1]
        prev_t[first] = self.last_t[u[first]]
        prev_track = np.empty_like(tr)
        prev_track[1:] = tr[:-1]
        prev_track[first] = self.last_track[u[first]]
        gap = t - prev_t  # NaN when the account had no earlier play
        short = (gap > 0) & (gap <= SESSION_GAP_S)
        loop = (tr == prev_track) & (gap <= SESSION_GAP_S)
        at30 = (ms >= THRESHOLD_LOW_MS) & (ms < THRESHOLD_HIGH_MS)

        starts = np.flatnonzero(first)
        users = u[starts]
        ends = np.append(starts[1:], len(u)) - 1
        t_end = t[ends]
        self._decay(users, t_end)
        sums = {
            "n": np.ones(len(u)),
            "n30": at30.astype(np.float64),
            "nloop": loop.astype(np.float64),
            "ngap": short.astype(np.float64),
            "sgap": np.where(short, gap, 0.0),
            "sgap2": np.where(short, gap * gap, 0.0),
        }
        for name, values in sums.items():
            self.fast[name][users] += np.add.reduceat(values, starts)
        self.total[users] += np.diff(np.append(starts, len(u)))
        keys, counts = np.unique(u.astype(np.int64) * 24 + ((t // 3600) % 24).astype(np.int64), return_counts=True)
        self.hours.reshape(-1)[keys] += counts
        later = ~(self.last_t[users] > t_end)  # a late batch must not move the clock backwards
        self.last_t[users[later]] = t_end[later]
        self.last_track[users[later]] = tr[ends][later]
        first_seen = np.isnan(self.first_t[users]) | (t[starts] < self.first_t[users])
        self.first_t[users[first_seen]] = t[starts][first_seen]
        created = batch.created[order][starts]
        known = ~np.isnan(created)
        self.created[users[known]] = created[known]

    def _decay(self, users: I32, now: F64) -> None:
        last = self.upd_t[users]
        dt = np.where(np.isnan(last), 0.0, np.maximum(now - last, 0.0))
        fast = np.exp(-dt / self.config.memory_s)
        for values in self.fast.values():
            values[users] *= fast
        self.hours[users] *= np.exp(-dt / self.config.diurnal_memory_s)[:, None]
        self.upd_t[users] = np.fmax(last, now)

    def evidence(self, users: I32) -> dict[str, F64]:
        """Per-signal evidence in [0, 1] for ``users`` (shape ``(k,)`` each); no side effects.

        A signal needs enough plays to speak: every value is scaled by a
        confidence that grows from 0 at 4 recent plays to 1 at 12.
        """
        f = {k: v[users] for k, v in self.fast.items()}
        n = np.maximum(f["n"], 1e-9)
        confidence = ramp(f["n"], 4.0, 12.0)
        ngap = np.maximum(f["ngap"], 1e-9)
        mean_gap = f["sgap"] / ngap
        var_gap = np.maximum(f["sgap2"] / ngap - mean_gap**2, 0.0)
        cv = np.sqrt(var_gap) / np.maximum(mean_gap, 1e-9)
        rate_per_h = f["n"] / (self.config.memory_s / 3600.0)
        hours = self.hours[users]
        total_h = hours.sum(axis=1)
        p = hours / np.maximum(total_h, 1e-9)[:, None]
        entropy = -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=1) / np.log(24.0)
        age = self.first_t[users] - self.created[users]
        young = np.where(np.isnan(age), 0.0, (age < self.config.young_account_s).astype(np.float64))
        return {
            "threshold_30s": ramp(f["n30"] / n, 0.2, 0.5) * confidence,
            "loops": ramp(f["nloop"] / n, 0.35, 0.7) * confidence,
            "regular_gaps": ramp(cv, 0.3, 0.12) * ramp(f["ngap"], 6.0, 12.0),
            "rate": ramp(rate_per_h, 30.0, 60.0) * confidence,
            "flat_diurnal": ramp(entropy, 0.9, 0.97) * ramp(total_h, 48.0, 96.0),
            "young_account": young,
        }

    def values(self, users: I32) -> dict[str, F64]:
        """The raw measures behind the evidence, for alert explanations."""
        f = {k: v[users] for k, v in self.fast.items()}
        n = np.maximum(f["n"], 1e-9)
        ngap = np.maximum(f["ngap"], 1e-9)
        mean_gap = f["sgap"] / ngap
        cv = np.sqrt(np.maximum(f["sgap2"] / ngap - mean_gap**2, 0.0)) / np.maximum(mean_gap, 1e-9)
        return {
            "share_30_36s": f["n30"] / n,
            "loop_share": f["nloop"] / n,
            "gap_cv": cv,
            "plays_per_hour": f["n"] / (self.config.memory_s / 3600.0),
            "account_age_at_first_play_h": (self.first_t[users] - self.created[users]) / 3600.0,
        }


class TrackState:
    """Per-track play counts decayed over ``memory_s`` (days): the baseline a burst is measured against."""

    def __init__(self, memory_s: float = 3 * 86400.0) -> None:
        self.memory_s = memory_s
        self.plays: F64 = np.zeros(1024)
        self.upd_t: F64 = np.full(1024, np.nan)
        self.first_t: F64 = np.full(1024, np.nan)

    def update(self, batch: EventBatch) -> None:
        if len(batch) == 0:
            return
        needed = int(batch.track.max()) + 1
        if needed > self.plays.shape[0]:
            new = max(needed, 2 * self.plays.shape[0])
            self.plays = np.concatenate([self.plays, np.zeros(new - self.plays.shape[0])])
            self.upd_t = np.concatenate([self.upd_t, np.full(new - self.upd_t.shape[0], np.nan)])
            self.first_t = np.concatenate([self.first_t, np.full(new - self.first_t.shape[0], np.nan)])
        tracks, counts = np.unique(batch.track, return_counts=True)
        now = float(batch.t.max())
        last = self.upd_t[tracks]
        dt = np.where(np.isnan(last), 0.0, np.maximum(now - last, 0.0))
        self.plays[tracks] = self.plays[tracks] * np.exp(-dt / self.memory_s) + counts
        self.upd_t[tracks] = np.fmax(last, now)
        self.first_t[tracks] = np.fmin(self.first_t[tracks], float(batch.t.min()))

    def baseline(self, tracks: I32, now: float) -> F64:
        """Decayed plays of ``tracks`` as of ``now``."""
        dt = np.maximum(now - np.nan_to_num(self.upd_t[tracks], nan=now), 0.0)
        out: F64 = self.plays[tracks] * np.exp(-dt / self.memory_s)
        return out


def combine(evidence: dict[str, F64]) -> F64:
    """Noisy-or of weighted signals: 1 - prod(1 - w_i * e_i)."""
    keep: F64 | None = None
    for name, values in evidence.items():
        factor = 1.0 - SIGNAL_WEIGHTS.get(name, 0.5) * values
        keep = factor if keep is None else keep * factor
    if keep is None:
        return np.zeros(0)
    out: F64 = 1.0 - keep
    return out


__all__ = ["SIGNAL_WEIGHTS", "AccountState", "BehaviourConfig", "TrackState", "combine", "ramp"]
