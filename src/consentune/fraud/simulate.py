"""Synthetic play streams: organic listening plus labelled attacks (for tests, the CLI and the bench).

Organic listening: heavy-tailed activity per account (log-normal) and
popularity per track (Zipf), sessions of geometric length starting at
diurnal hours shifted by each account's time zone, favourites and
occasional repeats (a few "loopers" repeat one song on purpose), skips
(mostly early) and otherwise whole tracks, home networks, carrier-NAT /24s
shared by many mobile listeners, households sharing a device, accounts
mostly old with a few new ones.

Attacks (``AttackSpec``): a bot farm of ``bots`` accounts streams ``targets``
tracks, each (bot, target) pair present with probability ``density``;
camouflage adds as many plays of other tracks, chosen uniformly
(``random``) or by popularity (``biased``); ``hijacked`` farms take over
organic accounts with their history.  Each farm draws its habits: stopping
just past 30 s or playing whole tracks, looping or not, shared IP/device
pools or residential proxies with one address per bot.  Everything is
columnar numpy; ids are dense integers; ground truth is returned beside.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from consentune.fraud.encode import F64, I32, EventBatch

DAY = 86400.0
START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: simulated streams start here
CARRIER_NETS = 40  # shared /24s of mobile carriers (CGNAT)
# hour-of-day weights of session starts (local time): low at night, evening peak
DIURNAL = np.array([2, 1, 1, 0.5, 0.5, 1, 2, 4, 5, 5, 5, 5, 6, 6, 5, 5, 6, 7, 8, 9, 9, 8, 6, 4], dtype=np.float64)


@dataclass(frozen=True)
class Stream:
    """Events sorted by time, plus what the world looks like."""

    events: EventBatch
    n_users: int
    n_tracks: int
    track_seconds: F64  # duration of each track


@dataclass(frozen=True)
class AttackSpec:
    bots: int = 200
    targets: int = 30
    density: float = 0.5
    camouflage: str = "none"  # none | random | biased | hijacked
    start: float = START + 3 * DAY
    hours: float = 6.0


@dataclass(frozen=True)
class Attack:
    """Ground truth of one injected attack."""

    spec: AttackSpec
    bots: I32  # account ids
    targets: I32  # track ids
    events: EventBatch
    habits: dict[str, bool]


def organic(*, users: int, tracks: int, events: int, days: float, seed: int) -> Stream:
    """About ``events`` organic plays of ``users`` accounts over ``tracks`` tracks in ``days`` days."""
    rng = np.random.default_rng(seed)
    durations = np.clip(rng.lognormal(np.log(215.0), 0.3, tracks), 60.0, 900.0)
    popularity = 1.0 / np.arange(1, tracks + 1) ** 0.9
    popularity = popularity[rng.permutation(tracks)]
    popularity /= popularity.sum()
    activity = rng.lognormal(0.0, 1.2, users)
    per_user = np.maximum(1, rng.poisson(activity / activity.sum() * events)).astype(np.int64)
    user = np.repeat(np.arange(users, dtype=np.int32), per_user)
    favourites = rng.choice(tracks, size=(users, 12), p=popularity)
    pick_fav = rng.random(len(user)) < 0.5
    track = np.where(
        pick_fav,
        favourites[user, rng.integers(0, 12, len(user))],
        rng.choice(tracks, size=len(user), p=popularity),
    ).astype(np.int32)
    loopers = rng.random(users) < 0.01  # fans who put one song on repeat
    repeat = rng.random(len(user)) < np.where(loopers[user], 0.6, 0.04)
    same_user = np.r_[False, user[1:] == user[:-1]]
    repeat &= same_user
    track = _carry_forward(track, repeat)
    ms = _organic_ms(rng, durations[track])
    t = _timeline(rng, user, ms, days=days, start=START, users=users)
    net, device = _organic_infra(rng, user, users)
    created = np.where(
        rng.random(users) < 0.05, START + rng.random(users) * days * DAY, START - rng.random(users) * 3 * 365 * DAY
    )
    first = np.full(users, np.inf)
    np.minimum.at(first, user, t)
    created = np.minimum(created, first - 60.0)
    batch = EventBatch(user, track, t, ms, net, device, created[user])
    return Stream(_sorted(batch), users, tracks, durations)


def from_counts(
    *, users: I32, items: I32, counts: npt.NDArray[np.int64], days: float, seed: int, n_users: int, n_tracks: int
) -> Stream:
    """Expand a user x item count graph (e.g. Last.fm) into timed plays.

    Each (user, item, count) becomes ``1 + floor(log2(count))`` plays (keeps
    heavy listening heavy without millions of rows), timed by the same
    session/diurnal model as ``organic``; play lengths and infrastructure are
    synthetic too.  Only the graph is real.
    """
    rng = np.random.default_rng(seed)
    plays = 1 + np.floor(np.log2(np.maximum(counts, 1))).astype(np.int64)
    user = np.repeat(users, plays).astype(np.int32)
    track = np.repeat(items, plays).astype(np.int32)
    order = np.lexsort((rng.random(len(user)), user))  # shuffle each user's plays
    user, track = user[order], track[order]
    durations = np.clip(rng.lognormal(np.log(215.0), 0.3, n_tracks), 60.0, 900.0)
    ms = _organic_ms(rng, durations[track])
    t = _timeline(rng, user, ms, days=days, start=START, users=n_users)
    net, device = _organic_infra(rng, user, n_users)
    created = START - rng.random(n_users) * 3 * 365 * DAY
    return Stream(_sorted(EventBatch(user, track, t, ms, net, device, created[user])), n_users, n_tracks, durations)


def inject(stream: Stream, spec: AttackSpec, *, seed: int) -> Attack:
    """A labelled attack on ``stream``'s world (new accounts unless hijacked; ids continue the stream's)."""
    rng = np.random.default_rng(seed)
    ev = stream.events
    heard = np.bincount(ev.track, minlength=stream.n_tracks)
    targets = rng.choice(stream.n_tracks, size=spec.targets, replace=False).astype(np.int32)
    if spec.camouflage == "hijacked":
        plays = np.bincount(ev.user, minlength=stream.n_users)
        pool = np.flatnonzero(plays >= 10)
        bots = rng.choice(pool, size=min(spec.bots, len(pool)), replace=False).astype(np.int32)
    else:
        bots = np.arange(stream.n_users, stream.n_users + spec.bots, dtype=np.int32)
    habits = {
        "threshold_30s": bool(rng.random() < 0.7),
        "loops": bool(rng.random() < 0.5),
        "shared_infra": bool(rng.random() < 0.7),
    }
    edges = rng.random((len(bots), spec.targets)) < spec.density
    edges[np.arange(len(bots)), rng.integers(0, spec.targets, len(bots))] = True  # every bot plays a target
    bot_idx, tgt_idx = np.nonzero(edges)
    pair_bot, pair_track = bot_idx, targets[tgt_idx]
    if spec.camouflage in ("random", "biased", "hijacked"):
        per_bot = np.bincount(bot_idx, minlength=len(bots))
        camo_bot = np.repeat(np.arange(len(bots)), per_bot)
        if spec.camouflage == "random":
            camo = rng.integers(0, stream.n_tracks, len(camo_bot))
        else:  # biased (and hijacked, whose owners' own taste is popular music)
            p = heard / heard.sum()
            camo = rng.choice(stream.n_tracks, size=len(camo_bot), p=p)
        pair_bot = np.concatenate([pair_bot, camo_bot])
        pair_track = np.concatenate([pair_track, camo.astype(np.int32)])
    events = _bot_plays(rng, spec, bots, pair_bot, pair_track.astype(np.int32), stream, habits)
    return Attack(spec, bots, targets, events, habits)


def _bot_plays(
    rng: np.random.Generator,
    spec: AttackSpec,
    bots: I32,
    pair_bot: npt.NDArray[np.intp],
    pair_track: I32,
    stream: Stream,
    habits: dict[str, bool],
) -> EventBatch:
    n = len(bots)
    rate = rng.uniform(40.0, 90.0, n) if habits["threshold_30s"] else rng.uniform(12.0, 18.0, n)
    count = np.maximum(np.bincount(pair_bot, minlength=n), np.round(rate * spec.hours)).astype(np.int64)
    user_local = np.repeat(np.arange(n), count)
    # each bot cycles through its own pairs (all of them at least once), looping if the farm does
    order = np.argsort(pair_bot, kind="stable")
    starts = np.searchsorted(pair_bot[order], np.arange(n))
    sizes = np.bincount(pair_bot, minlength=n)
    position = np.arange(len(user_local)) - np.repeat(np.cumsum(count) - count, count)
    step = position // 3 if habits["loops"] else position  # a looping bot plays each track 3 times in a row
    track = pair_track[order][starts[user_local] + step % sizes[user_local]]
    if habits["threshold_30s"]:
        ms = rng.integers(30_500, 35_000, len(track)).astype(np.int32)
    else:
        ms = (stream.track_seconds[track] * 1000).astype(np.int32)
    gap = ms / 1000.0 + rng.uniform(1.0, 4.0, len(track))
    offset = rng.uniform(0.0, 1800.0, n)  # bots start within the attack's first half hour
    cum = np.cumsum(gap)
    before = np.repeat(
        np.cumsum(np.bincount(user_local, weights=gap, minlength=n))
        - np.bincount(user_local, weights=gap, minlength=n),
        count,
    )
    t = spec.start + offset[user_local] + cum - before - gap
    if habits["shared_infra"]:
        nets = rng.integers(0, 2**20, max(1, n // 20))
        devices = rng.integers(0, 2**30, max(1, n // 4))
        net = nets[rng.integers(0, len(nets), n)][user_local]
        device = devices[rng.integers(0, len(devices), n)][user_local]
    else:
        net = rng.integers(0, 2**22, n)[user_local]
        device = rng.integers(0, 2**30, n)[user_local]
    burst = spec.start - DAY + rng.uniform(0.0, 7200.0, n)  # new bots were created in a burst the day before
    created = np.full(n, np.nan) if spec.camouflage == "hijacked" else burst
    users = bots[user_local]
    batch = EventBatch(
        users.astype(np.int32),
        track.astype(np.int32),
        t,
        ms.astype(np.int32),
        (net + 2**22).astype(np.int32),  # farm address space apart from organic homes
        (device % (2**30) + 2**30).astype(np.int32),
        created[user_local],
    )
    return _sorted(batch)


def merge(stream: Stream, attack: Attack) -> EventBatch:
    """Organic and attack events, time-sorted; a hijacked account keeps its organic creation time."""
    return _sorted(EventBatch.concat([stream.events, attack.events]))


def _organic_ms(rng: np.random.Generator, seconds: F64) -> I32:
    skip = rng.random(len(seconds)) < 0.25
    skip_at = np.minimum(rng.exponential(35.0, len(seconds)) + 2.0, seconds)
    played = np.where(skip, skip_at, seconds - rng.uniform(0.0, 2.0, len(seconds)))
    out: I32 = np.maximum(played * 1000.0, 0).astype(np.int32)
    return out


def _timeline(rng: np.random.Generator, user: I32, ms: I32, *, days: float, start: float, users: int) -> F64:
    """Times for plays grouped by user (in order): sessions at diurnal hours, plays back to back within."""
    n = len(user)
    new_user = np.r_[True, user[1:] != user[:-1]]
    new_session = new_user | (rng.random(n) < 0.1)  # sessions of about 10 plays
    session = np.cumsum(new_session) - 1
    n_sessions = int(session[-1]) + 1 if n else 0
    s_user = user[new_session]
    tz = rng.integers(-8, 9, users)
    hour = rng.choice(24, size=n_sessions, p=DIURNAL / DIURNAL.sum())
    day = rng.integers(0, max(1, int(days)), n_sessions)
    s_start = start + day * DAY + ((hour - tz[s_user]) % 24) * 3600.0 + rng.uniform(0, 3600.0, n_sessions)
    gap = ms / 1000.0 + rng.exponential(6.0, n) + 0.5
    cum = np.cumsum(gap)
    first_cum = cum[new_session] - gap[new_session]
    within = cum - gap - first_cum[session]
    out: F64 = s_start[session] + within
    return out


def _organic_infra(rng: np.random.Generator, user: I32, users: int) -> tuple[I32, I32]:
    home = rng.integers(CARRIER_NETS, 2**22, users)
    mobile = rng.random(users) < 0.3
    carrier = rng.integers(0, CARRIER_NETS // 10, users)  # each carrier NATs its phones over 10 /24s
    on_mobile = mobile[user] & (rng.random(len(user)) < 0.5)
    net = np.where(on_mobile, carrier[user] * 10 + rng.integers(0, 10, len(user)), home[user])
    device_of = np.arange(users)
    shared = np.flatnonzero(rng.random(users) < 0.03)  # households: one device for two accounts
    device_of[shared] = np.maximum(shared - 1, 0)
    second = rng.random(len(user)) < 0.2
    device = np.where(second, device_of[user] + users, device_of[user])
    return net.astype(np.int32), device.astype(np.int32)


def _carry_forward(track: I32, repeat: npt.NDArray[np.bool_]) -> I32:
    """Where ``repeat``, the previous play's track (chains of repeats stay on one track)."""
    index = np.where(repeat, 0, np.arange(len(track)))
    np.maximum.accumulate(index, out=index)
    out: I32 = track[index]
    return out


def _sorted(batch: EventBatch) -> EventBatch:
    return batch.take(np.argsort(batch.t, kind="stable"))


__all__ = ["DAY", "START", "Attack", "AttackSpec", "Stream", "from_counts", "inject", "merge", "organic", "write_plays"]


def write_plays(events: EventBatch, attack: Attack, out: Path) -> Path:
    """Write events in the shared play-event schema (CSV or Parquet) and the ground truth beside them.

    Accounts are ``u<id>``, tracks ``t<id>``; networks become ``10.x.y.z``-style
    IPv4 addresses in their /24; devices ``d<id>``.
    """
    from datetime import UTC, datetime

    def iso(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")

    rows = [
        {
            "user_id": f"u{u}",
            "track_id": f"t{tr}",
            "played_at": iso(t),
            "ms_played": int(ms),
            "ip": _address(net, u) if net >= 0 else "",
            "device_id": f"d{dev}" if dev >= 0 else "",
            "account_created_at": "" if created != created else iso(created),
        }
        for u, tr, t, ms, net, dev, created in zip(
            events.user.tolist(),
            events.track.tolist(),
            events.t.tolist(),
            events.ms.tolist(),
            events.net.tolist(),
            events.device.tolist(),
            events.created.tolist(),
            strict=True,
        )
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        pq.write_table(pa.Table.from_pylist(rows), out)
    else:
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["user_id"])
            writer.writeheader()
            writer.writerows(rows)
    truth = out.with_name(out.name + ".truth.json")
    truth.write_text(
        json.dumps(
            {
                "bots": [f"u{b}" for b in attack.bots.tolist()],
                "targets": [f"t{t}" for t in attack.targets.tolist()],
                "attack_start": iso(attack.spec.start),
                "attack_hours": attack.spec.hours,
                "density": attack.spec.density,
                "camouflage": attack.spec.camouflage,
                "habits": attack.habits,
            },
            indent=2,
        )
    )
    return truth


def _address(net: int, user: int) -> str:
    """An IPv4 address inside /24 number ``net`` (host part from the account, so accounts differ)."""
    net %= 2**24
    return f"{(net >> 16) + 1}.{(net >> 8) & 255}.{net & 255}.{user % 250 + 1}"
