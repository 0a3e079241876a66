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
from scipy import stats

from consentune.fraud.encode import F64, I32, EventBatch

DAY = 86400.0


@dataclass(frozen=True)
class CollusionConfig:
    every_s: float = 3600.0  # cadence of the scheduled search, in event time
    horizon_days: int = 7
    min_plays: int = 1  # plays of a track that make an account a "favouring" listener of it
    popular_share: float = 0.01  # this share of tracks, by audience, is popular: ignored
    max_tracks_per_account: int = 100  # heavier accounts are left out of co-audience counts
    max_blocks: int = 5
    min_density: float = 1.0  # co-listeners above the null per track of a candidate track set
    min_members: int = 50
    min_share: float = 0.15
    min_member_plays: int = 2  # a member returned to the set at least this often
    member_p: float = 1e-3  # a member's distinct tracks on the set are this improbable under organic taste
    min_lift: float = 10.0  # members' edges on the set over what the accounts outside it predict
    max_p_log10: float = -9.0  # ... and that excess is this improbable (Poisson tail, log10)
    min_newcomer_share: float = 0.5  # of the accounts favouring the set, at least this share are newcomers
    newcomer_s: float = 14 * DAY  # a newcomer's first activity (created or first play) is this recent
    established_s: float = 30 * DAY  # the organic null is fitted on accounts active at least this long


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
    table: PairTable,
    config: CollusionConfig,
    *,
    now: float,
    first_seen: F64 | None = None,
    created: F64 | None = None,
) -> list[CollusionBlock]:
    """Groups of accounts favouring a shared set of tracks far beyond the null, as of ``now``
    (epoch seconds); strongest first.

    ``first_seen[account]`` (epoch seconds of its first play in the stream) and ``created[account]``
    (the platform's account creation time, NaN when unknown) date each account's first activity: the
    organic null is fitted on accounts active for ``established_s`` (when there are none — a short
    stream without creation dates — on everyone), and a block's members must be newcomers."""
    if len(table.user) == 0:
        return []
    n_users = int(table.user.max()) + 1
    first_active = _first_active(n_users, first_seen, created)
    established = first_active <= now - config.established_s
    # only accounts young enough to be members (first active within the horizon and the newcomer span)
    # are searched; when nobody is established (a short stream without creation dates) everyone is both
    young = first_active >= now - config.horizon_days * DAY - config.newcomer_s
    if not established.any():
        established = young = np.ones(n_users, dtype=bool)
    n_tracks = int(table.track.max()) + 1
    audience = np.bincount(table.track, minlength=n_tracks).astype(np.float64)
    # popularity is what established listeners make it: a farm of new accounts cannot hide its targets
    # among the popular tracks by streaming them
    organic = np.bincount(table.track[established[table.user]], minlength=n_tracks).astype(np.float64)
    heard = organic[organic > 0]
    cut = float(np.quantile(heard, 1.0 - config.popular_share)) if len(heard) else np.inf
    popular = organic >= max(3.0, cut)
    co = _co_favour(table, popular, established, young, n_users, n_tracks, config)
    if co is None:
        return []
    niche = ~popular[table.track]
    niche_plays = np.bincount(table.user[niche], weights=table.plays[niche], minlength=n_users).astype(np.float64)
    niche_tracks = np.bincount(table.user[niche], minlength=n_users).astype(np.float64)
    # organic taste per track: its share of established accounts' non-popular edges (half an edge for
    # tracks they never played, so a set of fresh tracks is not impossible under the null)
    taste = np.where(popular, 0.0, organic + 0.5)
    taste /= max(float(taste.sum()), 1.0)
    graph = _Graph(table, audience, niche_plays, np.bincount(table.user, minlength=n_users).astype(np.float64),
                   niche_tracks, taste)  # fmt: skip
    found = []
    alive = co.listeners >= 2
    for _ in range(config.max_blocks):
        in_set, density = _densest_tracks(co, alive)
        if density < config.min_density:
            break
        alive &= ~in_set
        block = _judge(graph, in_set, first_active, config, now)
        if block is not None:
            found.append(CollusionBlock(block.members, block.tracks, block.score,
                                        {**block.signals, "co_favour_density": density}))  # fmt: skip
    return sorted(found, key=lambda b: -b.score)


def _first_active(n_users: int, first_seen: F64 | None, created: F64 | None) -> F64:
    """Each account's first known activity: the earlier of its first play in the stream and its creation
    (epoch seconds; +inf when neither is known)."""
    out = np.full(n_users, np.inf)
    for times in (first_seen, created):
        if times is not None:
            m = min(n_users, times.shape[0])
            out[:m] = np.fmin(out[:m], np.nan_to_num(times[:m], nan=np.inf))
    return out


@dataclass(frozen=True)
class _CoFavour:
    """Co-audience counts of track pairs among light listeners, and the null's scale."""

    i: I32  # i < j
    j: I32
    count: F64
    listeners: F64  # light favouring listeners per track among young accounts
    audience: F64  # f: light favouring listeners per track among established accounts (the null's)
    scale: float  # K: the null expects K * f_i * f_j co-listeners of tracks i and j


def _co_favour(
    table: PairTable,
    popular: np.ndarray,
    established: np.ndarray,
    young: np.ndarray,
    n_users: int,
    n_tracks: int,
    config: CollusionConfig,
) -> _CoFavour | None:
    """Co-listeners of every pair of non-popular tracks among *young* accounts of at most
    ``max_tracks_per_account`` such tracks.  Null (configuration model: each young account's ``d``
    tracks drawn in proportion to the tracks' audiences ``f`` among established accounts, i.e. organic
    taste): ``K f_i f_j`` co-listeners with ``K = S2 / E^2``, ``S2`` the young accounts' sum of
    ``d(d-1)`` and ``E`` the established accounts' edges.  Fitting the null on established accounts keeps
    a farm from inflating its own targets' expected co-audience; counting young accounts only keeps the
    organic core (old heavy listeners on mid-popular tracks, which the null under-predicts) out."""
    fav = (table.plays >= config.min_plays) & ~popular[table.track]
    u, t = table.user[fav], table.track[fav]
    deg = np.bincount(u, minlength=n_users)
    keep = (deg[u] >= 2) & (deg[u] <= config.max_tracks_per_account)
    u, t = u[keep], t[keep]
    est = established[u]
    f = np.bincount(t[est], minlength=n_tracks).astype(np.float64)
    e = float(est.sum())
    u, t = u[young[u]], t[young[u]]
    if len(u) == 0:
        return None
    d = np.bincount(u, minlength=n_users).astype(np.float64)
    s2 = float((d * (d - 1.0)).sum())
    listeners = np.bincount(t, minlength=n_tracks).astype(np.float64)
    # tracks with three listeners or more, and accounts with two such tracks, make the pairs that matter
    two = listeners[t] >= 3
    u, t = u[two], t[two]
    two = np.bincount(u, minlength=n_users)[u] >= 2
    u, t = u[two], t[two]
    b = sp.csr_matrix((np.ones(len(u)), (u, t)), shape=(n_users, n_tracks))
    co = sp.triu(b.T @ b, k=1).tocoo()
    shared = co.data >= 2
    return _CoFavour(co.row[shared].astype(np.int32), co.col[shared].astype(np.int32),
                     co.data[shared].astype(np.float64), listeners, f, s2 / max(e * e, 1.0))  # fmt: skip


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


def _newcomers(table: PairTable, in_set: np.ndarray, first_active: F64, config: CollusionConfig) -> np.ndarray:
    """Accounts of at most ``max_tracks_per_account`` tracks whose first activity (creation, or first play
    in the stream) came at most ``newcomer_s`` before their first play on the set; fans, playlist
    listeners and pupils were around long before."""
    n_users = int(table.user.max()) + 1
    first_day = np.full(n_users, np.inf)
    on_rows = in_set[table.track][table.day_index]
    np.minimum.at(first_day, table.user[table.day_index[on_rows]], table.day_of[on_rows].astype(np.float64))
    m = min(n_users, first_active.shape[0])
    out = np.zeros(n_users, dtype=bool)
    out[:m] = first_active[:m] >= first_day[:m] * DAY - config.newcomer_s
    # accounts heavier than the co-audience admits are not searched, so not members either: a new heavy
    # listener's many obscure tracks, shared with a few like it, are no farm's targets
    out &= np.bincount(table.user, minlength=n_users) <= config.max_tracks_per_account
    return out


@dataclass(frozen=True)
class _Members:
    in_set: np.ndarray  # the set's tracks kept (audience mostly newcomers)
    member: np.ndarray  # per account
    owned: np.ndarray  # per track: at least three members and half the audience
    on_plays: F64
    share: F64
    newcomer_share: float


def _members(graph: _Graph, in_set: np.ndarray, first_active: F64, config: CollusionConfig) -> _Members | None:
    """Members of the set: newcomers that returned to it and put a real share of their non-popular
    plays on it, tied to a track they own; None unless most accounts favouring the set are newcomers."""
    table, audience = graph.table, graph.audience
    n_users = graph.niche_plays.shape[0]
    newcomer = _newcomers(table, in_set, first_active, config)
    # the set's tracks whose audience is mostly newcomers: a peeled set can mix a farm's targets with
    # tracks an organic group (a release's fans) shares; those tracks are the group's, not the farm's
    on = in_set[table.track]
    young_aud = np.bincount(table.track[on & newcomer[table.user]], minlength=audience.shape[0])
    in_set = in_set & (young_aud >= 0.5 * audience)
    if in_set.sum() < 2:
        return None
    # tracks mostly played by the newcomers that returned to the set join it (a sparse farm's targets that few pairs
    # tie into the peeled set)
    on = in_set[table.track]
    touching = newcomer & (np.bincount(table.user[on], weights=table.plays[on], minlength=n_users) >= 2)
    near = np.bincount(table.track[touching[table.user]], minlength=audience.shape[0])
    in_set = in_set | ((near >= 3) & (near >= 0.5 * audience))
    newcomer = _newcomers(table, in_set, first_active, config)
    on = in_set[table.track]
    on_plays = np.bincount(table.user[on], weights=table.plays[on], minlength=n_users).astype(np.float64)
    share = on_plays / np.maximum(graph.niche_plays, 1.0)
    heavy = (on_plays >= config.min_member_plays) & (share >= config.min_share)
    if heavy.sum() < config.min_members:
        return None
    newcomer_share = float(newcomer[heavy].mean())
    if newcomer_share < config.min_newcomer_share:
        return None
    member = heavy & newcomer
    # a member's distinct tracks among those the group owns are improbable for organic taste given how
    # many tracks it plays (binomial tail): a light new listener who met two of a thousand targets by
    # chance is no member
    member_aud = np.bincount(table.track[member[table.user] & on], minlength=audience.shape[0])
    owned = in_set & (member_aud >= 3) & (member_aud >= 0.5 * audience)
    k = np.bincount(table.user[owned[table.track]], minlength=n_users).astype(np.float64)
    p_owned = min(float(graph.taste[owned].sum()), 1.0)
    distinct = stats.binom.sf(k - 1.0, np.maximum(graph.niche_tracks, k), p_owned) <= config.member_p
    # ... or, for an account on one or two of them, its plays there are (repeat listening is organic too,
    # so the bar is higher)
    k_plays = np.bincount(table.user[owned[table.track]], weights=table.plays[owned[table.track]], minlength=n_users)
    n_plays = np.maximum(graph.niche_plays, k_plays)
    plays = stats.binom.sf(k_plays - 1.0, n_plays, p_owned) <= config.member_p**2
    member &= distinct | plays
    member_aud = np.bincount(table.track[member[table.user] & on], minlength=audience.shape[0])
    owned = in_set & (member_aud >= 3) & (member_aud >= 0.5 * audience)
    if owned.sum() < 2:
        return None
    member &= np.bincount(table.user[member[table.user] & owned[table.track]], minlength=n_users) > 0
    if member.sum() < config.min_members:
        return None
    return _Members(in_set, member, owned, on_plays, share, newcomer_share)


@dataclass(frozen=True)
class _Graph:
    """The horizon's pair table with the per-track and per-account totals the judge needs."""

    table: PairTable
    audience: F64  # accounts per track
    niche_plays: F64  # plays per account on tracks that are not popular
    user_deg: F64  # distinct tracks per account
    niche_tracks: F64  # distinct non-popular tracks per account
    taste: F64  # per track: the chance an organic non-popular edge lands on it


def _judge(
    graph: _Graph, in_set: np.ndarray, first_active: F64, config: CollusionConfig, now: float
) -> CollusionBlock | None:
    """A block when the accounts favouring the set are mostly newcomers and, on the tracks they own, far
    more present than the accounts outside the block predict (a scale-free test: the expectation comes
    from everyone else, so a farm that is a large share of all listening does not dilute it)."""
    table, audience = graph.table, graph.audience
    n_users = graph.niche_plays.shape[0]
    found = _members(graph, in_set, first_active, config)
    if found is None:
        return None
    # expansion: tracks the members own outside the peeled set (a sparse farm's targets shared by few
    # pairs) join it, bringing back members whose plays were mostly there
    for _ in range(2):
        member_aud = np.bincount(table.track[found.member[table.user]], minlength=audience.shape[0])
        more = (member_aud >= 3) & (member_aud >= 0.5 * audience) & ~found.in_set
        wider = _members(graph, found.in_set | more, first_active, config) if more.any() else None
        if wider is None or wider.member.sum() <= found.member.sum():
            break
        found = wider
    member, owned, on_plays, share = found.member, found.owned, found.on_plays, found.share
    newcomer_share = found.newcomer_share
    tied = member[table.user] & owned[table.track]
    members = np.flatnonzero(member)
    tracks = np.flatnonzero(owned)
    # leave-block-out null: the members' degree times the rate at which everyone else's edges land on
    # these tracks (one pseudo-edge, so an audience of members only is not an infinite surprise)
    observed = float(tied.sum())
    outside_edges = float((~member[table.user] & owned[table.track]).sum())
    outside_deg = float(graph.user_deg.sum() - graph.user_deg[members].sum())
    expected = float(graph.user_deg[members].sum()) * (outside_edges + 1.0) / (outside_deg + 1.0)
    lift = observed / max(expected, 1e-12)
    log10_p = float(stats.poisson.logsf(observed - 1.0, expected)) / math.log(10.0)
    if lift < config.min_lift or log10_p > config.max_p_log10:
        return None
    user_days = np.zeros(n_users)
    np.maximum.at(user_days, table.user[tied], table.days[tied])
    rows = tied[table.day_index]
    first, today = int(table.day_of.min()), int(now // DAY)
    daily = np.bincount(table.day_of[rows] - first, weights=table.day_plays[rows], minlength=today - first + 1)
    complete = daily[: today - first]
    sustain = float(complete[-1] / max(complete.max(), 1.0)) if len(complete) else 1.0
    median_share = float(np.median(share[members]))
    size = min(1.0, math.log1p(len(members)) / math.log1p(500))
    score = size * (0.5 + 0.5 * min(1.0, median_share / 0.5))
    total_plays = np.bincount(table.user, weights=table.plays, minlength=n_users)
    signals = {
        "collusion_lift": lift,
        "collusion_log10_p": log10_p,
        "collusion_newcomers": newcomer_share,
        "collusion_share": median_share,
        "collusion_days": float(np.median(user_days[members])),
        "collusion_sustain": sustain,
        "members": float(len(members)),
        "tracks": float(len(tracks)),
        "share_of_all_plays": float(np.median(on_plays[members] / np.maximum(total_plays[members], 1.0))),
    }
    return CollusionBlock(members.astype(np.int32), tracks.astype(np.int32), score, signals)


__all__ = ["CollusionBlock", "CollusionConfig", "PairHistory", "PairTable", "find_collusion"]
