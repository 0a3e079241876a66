"""Collusion on the account x track graph over days, measured against an organic null model.

The window search (``detector``) sees three hours: an account playing a few
tracks a day leaves one edge there, so a farm of such accounts is no block
at all.  Over a week the same farm is a group of accounts that each keep
returning to tracks of a shared set — tracks whose audiences overlap far
beyond what their popularity predicts.

1. ``PairHistory`` keeps distinct (account, track) pairs per day with their
   play counts, for ``horizon_days`` (memory: distinct pairs, not plays).
2. Co-audience of two tracks: accounts of at most ``max_tracks_per_account``
   such tracks that played both; the most popular tracks (``popular_share``
   by audience) are left out, so camouflage on them adds nothing.  Null
   (configuration model: each account's ``d`` tracks drawn in proportion to
   the tracks' audiences ``f``): ``K f_i f_j`` co-listeners, ``K = S2 / E^2``.
3. Only pairs *shared* by two or more accounts count (one listener's tracks
   make a clique of single co-listens that says nothing about a group), each
   weighing the chance the null would not share it; batch peeling finds the
   track set with the most such weight per track.  Camouflage on random
   tracks makes no shared pairs.
4. Judged on graph and time alone: members are *newcomers* (first play in
   the stream at most ``newcomer_s`` before their first play on the set) that
   played the set ``min_member_plays`` times and put ≥ ``min_share`` of their
   non-popular plays on it; the block owns ≥ 2 tracks (≥ half their audience,
   ≥ 3 members); it needs ``min_members``, a lift ≥ ``min_lift`` over random
   mixing, members returning on ≥ ``min_days`` distinct days (median), and
   must be *sustained*: the last complete day's plays ≥ ``min_sustain`` of the
   busiest complete day's (a release-day rush decays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from consentune.fraud.encode import F64, I32, EventBatch

DAY = 86400.0


@dataclass(frozen=True)
class CollusionConfig:
    every_s: float = 6 * 3600.0  # cadence of the search, in event time
    horizon_days: int = 7
    min_plays: int = 1  # plays of a track that make an account a "favouring" listener of it
    popular_share: float = 0.01  # this share of tracks, by audience, is popular: ignored
    max_tracks_per_account: int = 100  # heavier accounts are left out of co-audience counts
    max_blocks: int = 5
    min_density: float = 1.0  # co-listeners above the null per track of a candidate track set
    min_members: int = 50
    min_share: float = 0.15
    min_member_plays: int = 2  # a member returned to the set at least this often
    min_lift: float = 10.0
    min_days: float = 2.0
    min_sustain: float = 0.5
    newcomer_s: float = DAY  # a member's first play in the stream is at most this long before its first on the set


@dataclass(frozen=True)
class PairTable:
    """Distinct (account, track) pairs over the horizon: plays, distinct days, and plays per day."""

    user: I32
    track: I32
    plays: F64
    days: F64
    day_index: I32  # per (pair, day) row below: which pair
    day_of: I32  # day number (epoch days)
    day_plays: F64


class PairHistory:
    """Per-day distinct (account, track) pairs with play counts, kept for the last ``horizon_days``."""

    def __init__(self, horizon_days: int) -> None:
        self.horizon_days = horizon_days
        self._days: dict[int, list[tuple[np.ndarray, F64]]] = {}

    def add(self, batch: EventBatch) -> None:
        if len(batch) == 0:
            return
        day = np.floor(batch.t / DAY).astype(np.int64)
        key = batch.user.astype(np.int64) << 32 | batch.track.astype(np.int64)
        for d in np.unique(day).tolist():
            keys, counts = np.unique(key[day == d], return_counts=True)
            chunks = self._days.setdefault(int(d), [])
            chunks.append((keys, counts.astype(np.float64)))
            if len(chunks) > 16:
                self._days[int(d)] = [_compact(chunks)]

    def table(self, now: float) -> PairTable:
        last = math.floor(now / DAY)
        for d in [d for d in self._days if d <= last - self.horizon_days]:
            del self._days[d]
        per_day = [(d, *_compact(chunks)) for d, chunks in sorted(self._days.items())]
        if not per_day:
            empty = np.zeros(0)
            return PairTable(empty.astype(np.int32), empty.astype(np.int32), empty, empty,
                             empty.astype(np.int32), empty.astype(np.int32), empty)  # fmt: skip
        for d, keys, counts in per_day:
            self._days[d] = [(keys, counts)]
        keys = np.concatenate([k for _, k, _ in per_day])
        counts = np.concatenate([c for _, _, c in per_day])
        day_of = np.concatenate([np.full(len(k), d, dtype=np.int32) for d, k, _ in per_day])
        pairs, index = np.unique(keys, return_inverse=True)
        plays = np.bincount(index, weights=counts, minlength=len(pairs)).astype(np.float64)
        days = np.bincount(index, minlength=len(pairs)).astype(np.float64)
        return PairTable((pairs >> 32).astype(np.int32), (pairs & 0xFFFFFFFF).astype(np.int32), plays, days,
                         index.astype(np.int32), day_of, counts)  # fmt: skip


def _compact(chunks: list[tuple[np.ndarray, F64]]) -> tuple[np.ndarray, F64]:
    keys = np.concatenate([k for k, _ in chunks])
    counts = np.concatenate([c for _, c in chunks])
    uniq, index = np.unique(keys, return_inverse=True)
    return uniq, np.bincount(index, weights=counts, minlength=len(uniq)).astype(np.float64)


@dataclass(frozen=True)
class CollusionBlock:
    members: I32  # account ids
    tracks: I32  # track ids
    score: float
    signals: dict[str, float]


def find_collusion(
    table: PairTable, config: CollusionConfig, *, now: float, first_seen: F64 | None = None
) -> list[CollusionBlock]:
    """Groups of accounts favouring a shared set of tracks far beyond the null, as of ``now``
    (epoch seconds); strongest first.  ``first_seen[account]`` (epoch seconds of its first play in the
    stream) keeps accounts that listened elsewhere long before joining the set out of the group."""
    if len(table.user) == 0:
        return []
    n_users = int(table.user.max()) + 1
    seen = np.full(n_users, np.inf)
    if first_seen is not None:
        m = min(n_users, first_seen.shape[0])
        seen[:m] = np.nan_to_num(first_seen[:m], nan=np.inf)
    n_tracks = int(table.track.max()) + 1
    audience = np.bincount(table.track, minlength=n_tracks).astype(np.float64)
    heard = audience[audience > 0]
    popular = audience >= max(3.0, float(np.quantile(heard, 1.0 - config.popular_share)))
    co = _co_favour(table, popular, n_users, n_tracks, config)
    if co is None:
        return []
    total_plays = np.bincount(table.user, weights=table.plays, minlength=n_users).astype(np.float64)
    niche = ~popular[table.track]
    niche_plays = np.bincount(table.user[niche], weights=table.plays[niche], minlength=n_users).astype(np.float64)
    edges_total = float(len(table.user))
    user_deg = np.bincount(table.user, minlength=n_users).astype(np.float64)
    found = []
    alive = co.audience >= 2
    for _ in range(config.max_blocks):
        in_set, density = _densest_tracks(co, alive)
        if density < config.min_density:
            break
        alive &= ~in_set
        block = _judge(table, in_set, audience, niche_plays, total_plays, user_deg, edges_total, seen, config, now)
        if block is not None:
            found.append(CollusionBlock(block.members, block.tracks, block.score,
                                        {**block.signals, "co_favour_density": density}))  # fmt: skip
    return sorted(found, key=lambda b: -b.score)


@dataclass(frozen=True)
class _CoFavour:
    """Co-audience counts of track pairs among light listeners, and the null's scale."""

    i: I32  # i < j
    j: I32
    count: F64
    audience: F64  # f: light favouring listeners per track
    scale: float  # K: the null expects K * f_i * f_j co-listeners of tracks i and j


def _co_favour(
    table: PairTable, popular: np.ndarray, n_users: int, n_tracks: int, config: CollusionConfig
) -> _CoFavour | None:
    """Co-listeners of every pair of non-popular tracks among accounts of at most
    ``max_tracks_per_account`` such tracks.  Null (configuration model: each account's ``d`` tracks
    drawn in proportion to the tracks' audiences ``f``): ``K f_i f_j`` co-listeners with
    ``K = S2 / E^2``, ``E`` the edges and ``S2`` the sum of ``d(d-1)``."""
    fav = (table.plays >= config.min_plays) & ~popular[table.track]
    u, t = table.user[fav], table.track[fav]
    deg = np.bincount(u, minlength=n_users)
    keep = (deg[u] >= 2) & (deg[u] <= config.max_tracks_per_account)
    u, t = u[keep], t[keep]
    if len(u) == 0:
        return None
    f = np.bincount(t, minlength=n_tracks).astype(np.float64)
    d = np.bincount(u, minlength=n_users).astype(np.float64)
    e, s2 = float(d.sum()), float((d * (d - 1.0)).sum())
    # tracks with three listeners or more, and accounts with two such tracks, make the pairs that matter
    two = f[t] >= 3
    u, t = u[two], t[two]
    two = np.bincount(u, minlength=n_users)[u] >= 2
    u, t = u[two], t[two]
    b = sp.csr_matrix((np.ones(len(u)), (u, t)), shape=(n_users, n_tracks))
    co = sp.triu(b.T @ b, k=1).tocoo()
    shared = co.data >= 2
    return _CoFavour(co.row[shared].astype(np.int32), co.col[shared].astype(np.int32),
                     co.data[shared].astype(np.float64), f, s2 / (e * e))  # fmt: skip


def _densest_tracks(co: _CoFavour, alive: np.ndarray, eps: float = 0.05) -> tuple[np.ndarray, float]:
    """The track set with the most *shared* pairs above the null per track, by batch peeling.

    A pair is shared when two or more accounts co-listen it (one listener's many tracks make a
    clique of single co-listens, which says nothing about a group).  Each shared pair weighs
    ``1 - P(count >= 2)`` with the count Poisson of mean ``mu = K f_i f_j`` under the null:
    popular pairs, shared anyway, weigh about nothing.  (Pairs not shared are left out: their null
    weight is small for the small ``mu`` that matter; the judge rejects what is left of the
    popular core.)
    """
    alive = alive.copy()
    best, best_density = alive.copy(), 0.0
    mu = co.scale * co.audience[co.i] * co.audience[co.j]
    w = np.exp(-mu) * (1.0 + mu)
    i, j = co.i, co.j
    for _ in range(500):
        size = int(alive.sum())
        if size == 0:
            break
        live = alive[i] & alive[j]
        density = float(w[live].sum()) / size
        if density > best_density:
            best, best_density = alive.copy(), density
        deg = np.bincount(i[live], weights=w[live], minlength=alive.shape[0])
        deg += np.bincount(j[live], weights=w[live], minlength=alive.shape[0])
        drop = alive & (deg <= 2.0 * (1.0 + eps) * max(density, 0.0))
        if not drop.any():
            drop = alive & (deg <= deg[alive].min())
        alive &= ~drop
    return best, best_density


def _judge(
    table: PairTable,
    in_set: np.ndarray,
    audience: F64,
    niche_plays: F64,
    total_plays: F64,
    user_deg: F64,
    edges_total: float,
    seen: F64,
    config: CollusionConfig,
    now: float,
) -> CollusionBlock | None:
    n_users = niche_plays.shape[0]
    on = in_set[table.track]
    on_plays = np.bincount(table.user[on], weights=table.plays[on], minlength=n_users)
    share = on_plays / np.maximum(niche_plays, 1.0)
    # newcomers: accounts whose first play in the stream came at most a day before their first play
    # on the set; fans, playlist listeners and pupils listened elsewhere long before
    first_day = np.full(n_users, np.inf)
    on_rows = on[table.day_index]
    np.minimum.at(first_day, table.user[table.day_index[on_rows]], table.day_of[on_rows].astype(np.float64))
    newcomer = seen >= first_day * DAY - config.newcomer_s
    member = (on_plays >= config.min_member_plays) & (share >= config.min_share) & newcomer
    if member.sum() < config.min_members:
        return None
    # owned tracks: at least three members and half of the audience
    pair_member = member[table.user] & on
    member_aud = np.bincount(table.track[pair_member], minlength=audience.shape[0]).astype(np.float64)
    owned = in_set & (member_aud >= 3) & (member_aud >= 0.5 * audience)
    if owned.sum() < 2:
        return None
    tied = member[table.user] & owned[table.track]
    member &= np.bincount(table.user[tied], minlength=n_users) > 0
    tied = member[table.user] & owned[table.track]
    members = np.flatnonzero(member)
    if len(members) < config.min_members:
        return None
    tracks = np.flatnonzero(owned)
    expected = user_deg[members].sum() * audience[tracks].sum() / max(edges_total, 1.0)
    lift = float(tied.sum()) / max(expected, 1e-9)
    user_days = np.zeros(n_users)
    np.maximum.at(user_days, table.user[tied], table.days[tied])
    median_days = float(np.median(user_days[members]))
    # sustained: the last complete day against the busiest complete day (today is still partial)
    rows = tied[table.day_index]
    first, today = int(table.day_of.min()), int(now // DAY)
    daily = np.bincount(table.day_of[rows] - first, weights=table.day_plays[rows], minlength=today - first + 1)
    complete = daily[: today - first]
    sustain = float(complete[-1] / max(complete.max(), 1.0)) if len(complete) else 0.0
    if lift < config.min_lift or median_days < config.min_days or sustain < config.min_sustain:
        return None
    median_share = float(np.median(share[members]))
    size = min(1.0, math.log1p(len(members)) / math.log1p(500))
    score = size * (0.5 + 0.5 * min(1.0, median_share / 0.5))
    signals = {
        "collusion_lift": lift,
        "collusion_share": median_share,
        "collusion_days": median_days,
        "collusion_sustain": sustain,
        "members": float(len(members)),
        "tracks": float(len(tracks)),
        "share_of_all_plays": float(np.median(on_plays[members] / np.maximum(total_plays[members], 1.0))),
    }
    return CollusionBlock(members.astype(np.int32), tracks.astype(np.int32), score, signals)


__all__ = ["CollusionBlock", "CollusionConfig", "PairHistory", "PairTable", "find_collusion"]
