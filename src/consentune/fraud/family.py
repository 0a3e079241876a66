"""A whole family of collusion attacks, and organic look-alikes that must not be flagged.

``CollusionSpec`` spans the space an attacker chooses from: how many
accounts, how many target tracks and how densely they are covered, how much
camouflage (on popular or on random tracks), timing from metronomic
(round-the-clock, fixed gaps, plays stopped just past 30 s) to human
(diurnal sessions in a time zone, irregular gaps, skips), address and
device diversity (from one /24 or one device for the whole farm to one
residential address and one device per account), plays per day, duration
and ramp-up, and new or aged accounts.

``lookalikes`` adds five kinds of real listening with the graph shape of an
attack, played by existing organic accounts: a release-day rush onto a new
album, a viral track, a playlist feature, a fan club, a school class on
one NAT.  Everything is columnar numpy on a ``simulate.Stream``'s world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from consentune.fraud.encode import F64, I32, EventBatch
from consentune.fraud.simulate import DAY, DIURNAL, Stream

FARM_NETS = 2**22  # farm /24s live apart from organic homes (ids only; the detector never sees this)
FARM_DEVICES = 2**30


@dataclass(frozen=True)
class CollusionSpec:
    accounts: int = 200
    targets: int = 30
    density: float = 0.1  # chance that an account streams a given target (every account streams one)
    camouflage: float = 0.0  # share of plays on other tracks
    camouflage_on: str = "popular"  # popular | random
    human: float = 1.0  # timing: 0 metronomic ... 1 human
    address_diversity: float = 1.0  # 0: one /24 for the farm ... 1: one residential address per account
    device_diversity: float = 1.0  # 0: one device for the farm ... 1: one per account
    plays_per_day: float = 8.0  # per account once ramped up
    days: float = 7.0
    ramp_days: float = 0.0  # rate grows linearly from 0 over this long
    aged: bool = False  # accounts with years of age (bought or hijacked) rather than opened the day before
    start: float = 0.0


@dataclass(frozen=True)
class Injected:
    """Ground truth of one injected group (an attack or an organic look-alike)."""

    kind: str
    accounts: I32
    tracks: I32
    events: EventBatch
    start: float


def collusion(stream: Stream, spec: CollusionSpec, *, seed: int) -> Injected:
    """New accounts (ids after the stream's) streaming ``spec.targets`` random tracks of the stream's world."""
    rng = np.random.default_rng(seed)
    n = spec.accounts
    targets = rng.choice(stream.n_tracks, size=spec.targets, replace=False).astype(np.int32)
    edges = rng.random((n, spec.targets)) < spec.density
    edges[np.arange(n), rng.integers(0, spec.targets, n)] = True
    t, account = _schedule(rng, spec, n)
    track = _pick_tracks(rng, spec, stream, edges, targets, account)
    ms = _lengths(rng, spec.human, stream.track_seconds[track])
    net = _infra(rng, n, spec.address_diversity, FARM_NETS)[account]
    device = _infra(rng, n, spec.device_diversity, FARM_DEVICES)[account]
    if spec.aged:
        created = spec.start - rng.uniform(365, 3 * 365, n) * DAY
    else:  # opened in a burst the day before, or spread over the week before when timing is human
        created = spec.start - DAY - rng.uniform(0.0, 2 * 3600.0 + spec.human * 6 * DAY, n)
    users = (stream.n_users + account).astype(np.int32)
    events = EventBatch(users, track, t, ms, net, device, created[account])
    order = np.argsort(t, kind="stable")
    return Injected("attack", np.arange(stream.n_users, stream.n_users + n, dtype=np.int32), targets,
                    events.take(order), spec.start)  # fmt: skip


def _schedule(rng: np.random.Generator, spec: CollusionSpec, n: int) -> tuple[F64, npt.NDArray[np.intp]]:
    """Play times per account: the ramped rate gives each account's count; each play is human-timed
    with probability ``spec.human`` (a diurnal hour in the account's time zone on a day drawn from the
    ramp), else metronomic (the account's plays evenly spaced along the ramp, round the clock)."""
    r = min(spec.ramp_days, spec.days)
    full = spec.days - r / 2
    rate = spec.plays_per_day * rng.uniform(0.6, 1.4, n)
    count = np.maximum(1, rng.poisson(rate * full))
    account = np.repeat(np.arange(n), count)
    k = np.arange(len(account)) - np.repeat(np.cumsum(count) - count, count)
    human = rng.random(len(account)) < spec.human
    q = np.where(human, rng.random(len(account)), (k + 0.5) / count[account])
    day = _ramp_inverse(q, r, spec.days)
    tz = rng.integers(-8, 9, n)[account]
    hour = (rng.choice(24, size=len(account), p=DIURNAL / DIURNAL.sum()) - tz) % 24
    human_t = np.floor(day) * DAY + hour * 3600.0 + rng.uniform(0, 3600.0, len(account))
    metronomic_t = day * DAY + rng.uniform(0, 60.0, n)[account]
    t = spec.start + np.clip(np.where(human, human_t, metronomic_t), 0.0, spec.days * DAY - 1.0)
    return t, account


def _ramp_inverse(q: F64, ramp: float, days: float) -> F64:
    """Day offsets for quantiles ``q`` of an intensity rising linearly over ``ramp`` days, then flat."""
    if ramp <= 0:
        return q * days
    mass_ramp = ramp / 2
    x = q * (mass_ramp + days - ramp)
    out: F64 = np.where(x < mass_ramp, np.sqrt(2 * x * ramp), ramp + (x - mass_ramp))
    return out


def _pick_tracks(
    rng: np.random.Generator,
    spec: CollusionSpec,
    stream: Stream,
    edges: npt.NDArray[np.bool_],
    targets: I32,
    account: npt.NDArray[np.intp],
) -> I32:
    """Each play: camouflage with probability ``spec.camouflage``, else one of the account's targets."""
    per = edges.sum(axis=1)
    lists = np.flatnonzero(edges.ravel()) % spec.targets  # targets of account 0, then 1, ...
    first = np.cumsum(per) - per
    pick = first[account] + rng.integers(0, per[account])
    track = targets[lists[pick]]
    camo = rng.random(len(account)) < spec.camouflage
    if camo.any():
        if spec.camouflage_on == "popular":
            heard = np.bincount(stream.events.track, minlength=stream.n_tracks).astype(np.float64)
            other = rng.choice(stream.n_tracks, size=int(camo.sum()), p=heard / heard.sum())
        else:
            other = rng.integers(0, stream.n_tracks, int(camo.sum()))
        track = track.copy()
        track[camo] = other
    out: I32 = track.astype(np.int32)
    return out


def _lengths(rng: np.random.Generator, human: float, seconds: F64) -> I32:
    """Milliseconds played: a metronomic bot stops just past 30 s, a human-like one plays or skips."""
    skip = rng.random(len(seconds)) < 0.25
    natural = np.where(skip, np.minimum(rng.exponential(35.0, len(seconds)) + 2.0, seconds), seconds - 1.0)
    gaming = rng.uniform(30.5, 35.0, len(seconds))
    out = np.where(rng.random(len(seconds)) < human, natural, gaming) * 1000.0
    return np.maximum(out, 0).astype(np.int32)


def _infra(rng: np.random.Generator, n: int, diversity: float, base: int) -> I32:
    """Each account's address (or device): ``n ** diversity`` distinct values shared among the accounts."""
    distinct = max(1, round(n**diversity))
    pool = rng.choice(2**20, size=distinct, replace=False)
    out: I32 = (base + pool[rng.permutation(n) % distinct]).astype(np.int32)  # every value in use
    return out


# -- organic look-alikes -------------------------------------------------------------------------

LOOKALIKES = ("release_rush", "viral_track", "playlist_feature", "fan_club", "school_nat")


def lookalikes(stream: Stream, *, start: float, seed: int) -> list[Injected]:
    """One of each look-alike, starting at ``start``, played by existing organic accounts."""
    rng = np.random.default_rng(seed)
    plays = np.bincount(stream.events.user, minlength=stream.n_users)
    active = np.flatnonzero(plays >= 5)
    heard = np.bincount(stream.events.track, minlength=stream.n_tracks)
    obscure = np.flatnonzero(heard <= np.quantile(heard, 0.5))
    middle = np.flatnonzero((heard > np.quantile(heard, 0.9)) & (heard <= np.quantile(heard, 0.99)))
    used: set[int] = set()

    def accounts(k: int) -> I32:
        free = np.setdiff1d(active, np.fromiter(used, dtype=np.int64, count=len(used)))
        chosen = rng.choice(free, size=min(k, len(free)), replace=False).astype(np.int32)
        used.update(chosen.tolist())
        return chosen

    def tracks(pool: npt.NDArray[np.intp], k: int) -> I32:
        return rng.choice(pool, size=k, replace=False).astype(np.int32)

    n_fans = max(100, len(active) // 10)  # the groups together use about 70 % of the active accounts
    out = [
        # a new album (8 obscure-so-far tracks): fans play several on release day, fewer each day after
        _group(
            rng,
            stream,
            "release_rush",
            accounts(n_fans),
            tracks(obscure, 8),
            start,
            per_day=[6.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1],
            share=0.6,
        ),
        # one obscure track goes viral: a large audience, one or two plays each, over two days
        _group(
            rng,
            stream,
            "viral_track",
            accounts(2 * n_fans),
            tracks(obscure, 1),
            start + 2 * DAY,
            per_day=[1.0, 1.0],
            share=1.0,
        ),
        # 20 mid-popular tracks featured on a playlist for a week; listeners play part of it in sessions
        _group(
            rng,
            stream,
            "playlist_feature",
            accounts(n_fans),
            tracks(middle, 20),
            start + DAY,
            per_day=[3.0] * 7,
            share=0.6,
        ),
        # a fan club of an obscure artist (6 tracks) that the club's members play steadily, inside a larger
        # casual audience of the same tracks
        _group(rng, stream, "fan_club", accounts(n_fans), tracks(obscure, 6), start, per_day=[2.0] * 14, share=0.8),
        # a school class (30 pupils) on one NAT, set 5 tracks to listen to over three days
        _group(
            rng,
            stream,
            "school_nat",
            accounts(30),
            tracks(obscure, 5),
            start + 3 * DAY,
            per_day=[3.0, 3.0, 3.0],
            share=1.0,
            one_net=True,
        ),
    ]
    fan_club = out[3]
    casual = _group(rng, stream, "fan_club", accounts(3 * len(fan_club.accounts)), fan_club.tracks, start,
                    per_day=[0.2] * 14, share=0.3)  # fmt: skip
    out[3] = Injected("fan_club", fan_club.accounts, fan_club.tracks,
                      EventBatch.concat([fan_club.events, casual.events]), start)  # fmt: skip
    return out


def _group(
    rng: np.random.Generator,
    stream: Stream,
    kind: str,
    accounts: I32,
    tracks: I32,
    start: float,
    *,
    per_day: list[float],
    share: float,
    one_net: bool = False,
) -> Injected:
    """Extra plays of ``tracks`` by organic ``accounts``: day ``d`` adds Poisson(``per_day[d]``) plays
    per account that joins (each joins with probability ``share``), at diurnal hours, each account on
    one of its own recent addresses and devices (or, ``one_net``, all on one /24)."""
    joined = accounts[rng.random(len(accounts)) < share] if share < 1.0 else accounts
    if len(joined) == 0:
        joined = accounts[:1]
    counts = rng.poisson(np.array(per_day)[None, :].repeat(len(joined), 0))
    who = np.repeat(np.repeat(np.arange(len(joined)), len(per_day)), counts.ravel())
    day = np.repeat(np.tile(np.arange(len(per_day)), len(joined)), counts.ravel())
    favourite = rng.integers(0, len(tracks), len(joined))
    own = np.where(rng.random(len(who)) < 0.4, favourite[who], rng.integers(0, len(tracks), len(who)))
    track = tracks[own]
    hour = rng.choice(24, size=len(who), p=DIURNAL / DIURNAL.sum())
    t = start + day * DAY + hour * 3600.0 + rng.uniform(0, 3600.0, len(who))
    ms = _lengths(rng, 1.0, stream.track_seconds[track])
    user = joined[who]
    last = _last_infra(stream, joined)
    net = np.full(len(who), int(rng.integers(0, 2**20)) + FARM_NETS // 2) if one_net else last[0][who]
    created = _created(stream, joined)[who]
    events = EventBatch(user.astype(np.int32), track, t, ms, net.astype(np.int32),
                        last[1][who].astype(np.int32), created)  # fmt: skip
    return Injected(kind, joined, tracks, events.take(np.argsort(t, kind="stable")), start)


def _last_infra(stream: Stream, users: I32) -> tuple[I32, I32]:
    ev = stream.events
    index = np.full(stream.n_users, -1, dtype=np.int64)
    index[ev.user] = np.arange(len(ev))  # the last event of each account wins
    pick = index[users]
    return ev.net[pick], ev.device[pick]


def _created(stream: Stream, users: I32) -> F64:
    ev = stream.events
    created = np.full(stream.n_users, np.nan)
    created[ev.user] = ev.created
    out: F64 = created[users]
    return out


__all__ = ["LOOKALIKES", "CollusionSpec", "Injected", "collusion", "lookalikes"]
