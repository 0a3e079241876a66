"""The streaming detector: behaviour state per account plus dense-block search on a sliding window.

Events arrive in micro-batches (any size).  Each batch is checked (bad
values, clock skew, lateness, duplicates), folded into per-account state,
and appended to the window.  Every ``check_every_s`` of event time the
window's graph — accounts x (tracks, /24 networks, devices) with
log-weighted column suspiciousness and each account's behaviour score as a
node prior — is peeled for its densest blocks.  A block becomes an alert
when a sizeable group shares several tracks it owns (most of their audience
and of their multi-day plays) or its members behave like bots;
alerts about the same attack are merged as it goes on.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from consentune.fraud.behaviour import SIGNAL_WEIGHTS, AccountState, BehaviourConfig, TrackState, combine, ramp
from consentune.fraud.blocks import Block, Graph, column_weights, top_blocks
from consentune.fraud.collusion import CollusionConfig, PairHistory, find_collusion
from consentune.fraud.encode import F64, I32, EventBatch, EventEncoder, empty_batch
from consentune.types import PlayEvent


@dataclass(frozen=True)
class DetectorConfig:
    window_s: float = 3 * 3600.0  # the block graph covers this much event time
    check_every_s: float = 1200.0  # block search cadence while anything stirs, in event time
    quiet_check_s: float = 3600.0  # cadence when nothing does
    max_blocks: int = 5
    min_members: int = 5  # smaller groups are not alerted on
    min_graph_members: int = 10  # a group alerted on graph evidence alone is at least this big
    min_concentration: float = 0.25  # share of the members' window tracks that are the block's
    bot_behaviour: float = 0.5  # mean behaviour score that makes a group suspicious on its own
    prior_weight: float = 1.5  # behaviour score -> node prior in the block objective
    warmup_s: float = 86400.0  # before a day of history, burst means nothing: no graph-only alerts
    min_burst: float = 0.15  # tracks whose window plays are a smaller share of their multi-day plays are left out
    max_skew_s: float = 6 * 3600.0  # events further ahead of the clock (or the stream) are refused
    behaviour: BehaviourConfig = field(default_factory=BehaviourConfig)
    collusion: CollusionConfig = field(default_factory=CollusionConfig)  # the multi-day graph search


@dataclass(frozen=True)
class Alert:
    """One suspected attack, with the evidence that raised it.  Times are epoch seconds (event time)."""

    id: str
    score: float
    raised_at: float  # event time of the check that first raised it
    updated_at: float
    window_start: float
    window_end: float
    members: tuple[str, ...]
    tracks: tuple[str, ...]
    networks: tuple[str, ...]
    devices: tuple[str, ...]
    signals: dict[str, float]  # signal -> share of members it fired for (behaviour) or block measure

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": round(self.score, 4),
            "raised_at": self.raised_at,
            "updated_at": self.updated_at,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "members": list(self.members),
            "tracks": list(self.tracks),
            "networks": list(self.networks),
            "devices": list(self.devices),
            "signals": {k: round(v, 4) for k, v in self.signals.items()},
        }


@dataclass
class _Open:
    number: int
    score: float
    raised_at: float
    updated_at: float
    window_start: float
    window_end: float
    members: set[int]
    tracks: set[int]
    nets: set[int]
    devices: set[int]
    signals: dict[str, float]


@dataclass
class IntakeStats:
    accepted: int = 0
    invalid: int = 0
    skewed: int = 0
    late: int = 0
    duplicate: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in vars(self).items()}


class StreamDetector:
    """Consume play events incrementally; ``alerts()`` lists what was found so far, strongest first."""

    def __init__(
        self,
        config: DetectorConfig | None = None,
        *,
        encoder: EventEncoder | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` (epoch seconds) bounds how far in the future an event may claim to be;
        without one (replays, batch scans) the bound is relative to the stream itself."""
        self.config = config or DetectorConfig()
        self._clock = clock
        self.encoder = encoder or EventEncoder()
        self.state = AccountState(self.config.behaviour)
        self.track_state = TrackState()
        self.pairs = PairHistory(self.config.collusion.horizon_days)
        self._next_collusion = -math.inf
        self.search_cpu_s = 0.0  # CPU seconds spent in collusion searches (the scheduled job's cost)
        self.stats = IntakeStats()
        self.watermark = -math.inf
        self._started = math.inf
        self._last_full = -math.inf
        self._next_check = -math.inf
        self._window: list[EventBatch] = []
        self._open: list[_Open] = []
        self._numbers = itertools.count(1)

    # -- intake ---------------------------------------------------------------
    def push_events(self, events: Sequence[PlayEvent]) -> list[Alert]:
        return self.push(self.encoder.encode(events))

    def push(self, batch: EventBatch) -> list[Alert]:
        """Fold one batch in; returns the alerts raised or updated by checks this batch triggered.

        A batch spanning check times is folded in slices, so every check sees exactly the events
        up to its own time (a large batch never lends a check its future).
        """
        return self._ingest(batch, searches=False)

    def feed(self, batch: EventBatch) -> list[Alert]:
        """:meth:`push` that also runs the collusion search each time event time passes its schedule
        (``collusion.every_s``): replays and batch scans.  A live service pushes with :meth:`push` and
        runs :meth:`search_collusion` from its scheduler instead, off the intake path."""
        return self._ingest(batch, searches=True)

    def _ingest(self, batch: EventBatch, *, searches: bool) -> list[Alert]:
        batch = self._admit(batch)
        if len(batch) == 0:
            return []
        batch = batch.take(np.argsort(batch.t, kind="stable"))
        if self._next_check == -math.inf:
            self._started = float(batch.t[0])
            self._next_check = self._started + self.config.check_every_s
            self._next_collusion = self._started + self.config.collusion.every_s
        touched: list[int] = []
        start = 0
        while start < len(batch):
            search_first = searches and self._next_collusion <= self._next_check
            due = self._next_collusion if search_first else self._next_check
            stop = int(np.searchsorted(batch.t, due, side="left"))
            if stop > start:
                self._fold(batch.take(np.arange(start, stop)))
                start = stop
            if start < len(batch):  # events at or past the due time remain: run the search or check first
                if search_first:
                    touched += self._collusion(due)
                else:
                    touched += self._check(due)
                    self._next_check += self.config.check_every_s
        return [self._public(a) for a in self._open if a.number in set(touched)]

    def collusion_due(self, now: float | None = None) -> bool:
        """Whether the scheduled collusion search is due at ``now`` (default: the stream's watermark)."""
        now = self.watermark if now is None else now
        return self._next_collusion != -math.inf and now >= self._next_collusion

    def search_collusion(self, now: float | None = None) -> list[Alert]:
        """Run the multi-day collusion search on the pair history as of ``now`` (event time; default the
        watermark) and return the alerts it raised or updated.  Not part of :meth:`push`: the search reads a
        week of pairs, so it runs on a schedule (a periodic job, or :meth:`feed` in replays)."""
        now = self.watermark if now is None else now
        if now == -math.inf:
            return []
        touched = set(self._collusion(now))
        return [self._public(a) for a in self._open if a.number in touched]

    def _fold(self, part: EventBatch) -> None:
        self.state.update(part)
        self.track_state.update(part)
        self.pairs.add(part)
        self._window.append(part)
        self.watermark = max(self.watermark, float(part.t.max()))

    def flush(self) -> list[Alert]:
        """Run a final check and collusion search at the watermark (end of a batch scan)."""
        if self.watermark == -math.inf:
            return []
        touched = set(self._collusion(self.watermark)) | set(self._check(self.watermark, forced=True))
        return [self._public(a) for a in self._open if a.number in touched]

    def _admit(self, batch: EventBatch) -> EventBatch:
        n = len(batch)
        ok = np.isfinite(batch.t) & (batch.ms >= 0) & (batch.user >= 0) & (batch.track >= 0)
        self.stats.invalid += int(n - ok.sum())
        if not ok.any():
            return empty_batch()
        if self._clock is not None:
            reference = self._clock()
        else:  # no clock: what most of the stream says it is
            reference = max(self.watermark, float(np.quantile(batch.t[ok], 0.9)))
        skewed = ok & (batch.t > reference + self.config.max_skew_s)
        late = ok & (batch.t < self.watermark - self.config.window_s)
        self.stats.skewed += int(skewed.sum())
        self.stats.late += int(late.sum())
        batch = batch.take(np.flatnonzero(ok & ~skewed & ~late))
        if len(batch):
            batch = batch.take(self._fresh(batch))
        self.stats.accepted += len(batch)
        return batch

    def _fresh(self, batch: EventBatch) -> npt.NDArray[np.intp]:
        """Indices of events not seen before (same account, track and millisecond) in the window."""
        low = float(batch.t.min())
        earlier = [b.take(np.flatnonzero(b.t >= low)) for b in self._window if len(b) and b.t.max() >= low]
        pool = EventBatch.concat([*earlier, batch])
        first_new = len(pool) - len(batch)
        ms_time = np.round(pool.t * 1000).astype(np.int64)
        pair = pool.user.astype(np.int64) << 32 | pool.track.astype(np.int64)
        origin = np.arange(len(pool))
        order = np.lexsort((origin, ms_time, pair))
        repeat = np.zeros(len(pool), dtype=bool)
        repeat[order[1:]] = (pair[order[1:]] == pair[order[:-1]]) & (ms_time[order[1:]] == ms_time[order[:-1]])
        keep = np.flatnonzero(~repeat[first_new:])
        self.stats.duplicate += len(batch) - len(keep)
        return keep

    # -- detection ------------------------------------------------------------
    def _window_events(self, now: float) -> EventBatch:
        start = now - self.config.window_s
        self._window = [b for b in self._window if len(b) and b.t.max() >= start]
        window = EventBatch.concat(self._window)
        if len(self._window) > 64:  # keep the list short: compact into one array
            self._window = [window]
        return window.take(np.flatnonzero((window.t >= start) & (window.t <= now)))

    def _check(self, now: float, *, forced: bool = False) -> list[int]:
        touched: list[int] = []
        events = self._window_events(now)
        if len(events) == 0:
            return touched
        quiet = now - self._last_full < self.config.quiet_check_s and not self._stirring(events, now)
        if quiet and not forced:
            return touched
        self._last_full = now
        mature = now - self._started >= self.config.warmup_s
        found = _WindowGraph(events, self.state, self.track_state, now).candidates(self.config, mature=mature)
        for cand in found:
            in_block = np.isin(events.user, cand.members)
            start = float(events.t[in_block].min()) if in_block.any() else now
            touched.append(self._merge(cand, now, start))
        return touched

    def _collusion(self, now: float) -> list[int]:
        """The multi-day account x track search (see :mod:`consentune.fraud.collusion`)."""
        started = time.process_time()
        while self._next_collusion <= now:  # the next scheduled search, in event time
            self._next_collusion += self.config.collusion.every_s
        touched = []
        empty = np.zeros(0, dtype=np.int32)
        table = self.pairs.table(now)
        for block in find_collusion(
            table, self.config.collusion, now=now, first_seen=self.state.first_t, created=self.state.created
        ):
            behaviour = combine(self.state.evidence(block.members)) if len(block.members) else np.zeros(1)
            signals = {**block.signals, "mean_behaviour": float(behaviour.mean())}
            cand = _Candidate(block.members, block.tracks, empty, empty, block.score, signals)
            start = now - self.config.collusion.horizon_days * 86400.0
            reach = self.config.collusion.every_s + self.config.window_s
            touched.append(self._merge(cand, now, max(start, self._started), open_for=reach))
        self.search_cpu_s += time.process_time() - started
        return touched

    def _stirring(self, events: EventBatch, now: float) -> bool:
        """A cheap look (no sorting) for anything worth a full block search before the hourly one:
        an open alert, a track played mostly in this window, or a recent account that behaves like a bot."""
        if any(a.updated_at >= now - self.config.window_s for a in self._open):
            return True
        plays = np.bincount(events.track)
        busy = np.flatnonzero(plays >= 10).astype(np.int32)
        if len(busy) and bool((plays[busy] >= 0.5 * self.track_state.baseline(busy, now)).any()):
            return True
        recent = events.user[events.t >= now - self.config.check_every_s]
        if len(recent) == 0:
            return False
        active = np.zeros(self.state.size, dtype=bool)
        active[recent] = True
        users = np.flatnonzero(active).astype(np.int32)
        return bool((combine(self.state.evidence(users)) >= self.config.bot_behaviour).any())

    def _merge(self, cand: _Candidate, now: float, start: float, *, open_for: float | None = None) -> int:
        """Fold a sighting into the open alert about the same attack, or open a new one; ``open_for`` is how
        long an alert without sightings stays open to this kind of search (default: one window)."""
        open_for = self.config.window_s if open_for is None else open_for
        members = set(cand.members.tolist())
        tracks = set(cand.tracks.tolist())
        for alert in self._open:
            if alert.updated_at < now - open_for:
                continue  # an alert quiet for a whole window is closed: a new attack gets its own
            overlap_m = len(alert.members & members) / max(1, min(len(alert.members), len(members)))
            overlap_t = len(alert.tracks & tracks) / max(1, min(len(alert.tracks), len(tracks)))
            same_tracks = len(tracks) >= 2 and len(alert.tracks) >= 2 and overlap_t >= 0.5
            if overlap_m >= 0.3 or same_tracks:
                alert.members |= members
                alert.tracks |= tracks
                alert.nets |= set(cand.nets.tolist())
                alert.devices |= set(cand.devices.tolist())
                if cand.score >= alert.score:  # the evidence shown is that of the strongest sighting
                    alert.signals = cand.signals
                    alert.score = cand.score
                alert.updated_at = now
                alert.window_start = min(alert.window_start, start)
                alert.window_end = max(alert.window_end, now)
                return alert.number
        number = next(self._numbers)
        self._open.append(
            _Open(
                number,
                cand.score,
                now,
                now,
                start,
                now,
                members,
                tracks,
                set(cand.nets.tolist()),
                set(cand.devices.tolist()),
                cand.signals,
            )
        )
        return number

    def alerts(self) -> list[Alert]:
        return sorted((self._public(a) for a in self._open), key=lambda a: -a.score)

    def _public(self, alert: _Open) -> Alert:
        enc = self.encoder
        return Alert(
            id=f"alert-{alert.number}",
            score=alert.score,
            raised_at=alert.raised_at,
            updated_at=alert.updated_at,
            window_start=alert.window_start,
            window_end=alert.window_end,
            members=_names(enc.users.names, alert.members),
            tracks=_names(enc.tracks.names, alert.tracks),
            networks=_names(enc.nets.names, alert.nets),
            devices=_names(enc.devices.names, alert.devices),
            signals=dict(alert.signals),
        )


def _names(names: list[str], ids: set[int]) -> tuple[str, ...]:
    return tuple(sorted(names[i] if i < len(names) else str(i) for i in ids))


@dataclass(frozen=True)
class _Candidate:
    members: I32
    tracks: I32
    nets: I32
    devices: I32
    score: float
    signals: dict[str, float]


class _WindowGraph:
    """The window's accounts x (tracks | networks | devices) graph, with behaviour priors."""

    def __init__(self, events: EventBatch, state: AccountState, tracks: TrackState, now: float) -> None:
        self.users, local_u = np.unique(events.user, return_inverse=True)
        self.n_users = len(self.users)
        self.track_ids, local_t = np.unique(events.track, return_inverse=True)
        self.ev_u, self.ev_t = local_u, local_t
        # burst: the share of a track's (decayed, multi-day) plays that happened in this window;
        # steady organic listening scores low, a track suddenly streamed by a group scores high
        window_plays = np.bincount(local_t, minlength=len(self.track_ids)).astype(np.float64)
        baseline = tracks.baseline(self.track_ids.astype(np.int32), now)
        self.window_plays = window_plays
        self.burst = np.clip(window_plays / np.maximum(baseline, window_plays), 0.0, 1.0)
        pairs = np.unique(local_u.astype(np.int64) * len(self.track_ids) + local_t)
        self.eu = (pairs // len(self.track_ids)).astype(np.int32)
        self.et = (pairs % len(self.track_ids)).astype(np.int32)
        self.track_deg = np.bincount(self.et, minlength=len(self.track_ids)).astype(np.float64)
        self.user_deg = np.bincount(self.eu, minlength=self.n_users).astype(np.float64)
        self.net_ids, self.nu, self.nn = _infra(local_u, events.net)
        self.dev_ids, self.du, self.dd = _infra(local_u, events.device)
        self.net_deg = np.bincount(self.nn, minlength=len(self.net_ids)).astype(np.float64)
        self.dev_deg = np.bincount(self.dd, minlength=len(self.dev_ids)).astype(np.float64)
        evidence = state.evidence(self.users.astype(np.int32))
        evidence["shared_device"] = _max_over(self.du, ramp(self.dev_deg, 2.0, 6.0)[self.dd], self.n_users)
        young = ~np.isnan(state.created[self.users]) & (
            state.first_t[self.users] - state.created[self.users] < state.config.young_account_s
        )
        created = state.created[self.users]
        evidence["burst_creation"] = np.maximum(
            _creation_burst(self.nu, self.nn, young, created, self.net_deg, self.n_users),
            _creation_burst(self.du, self.dd, young, created, self.dev_deg, self.n_users),
        )
        self.evidence = evidence
        self.behaviour = combine(evidence)

    def graph(self, prior_weight: float, min_burst: float) -> Graph:
        n_t, n_n = len(self.track_ids), len(self.net_ids)
        # steadily played tracks cannot be an attack's targets: leaving them out keeps the peeling small
        # and stops camouflage on popular tracks from hiding a farm inside the organic core
        bursty = self.burst[self.et] >= min_burst
        shared_n = self.net_deg[self.nn] >= 2  # an address only one account uses says nothing
        shared_d = self.dev_deg[self.dd] >= 2
        rows = np.concatenate([self.eu[bursty], self.nu[shared_n], self.du[shared_d]])
        cols = np.concatenate([self.et[bursty], n_t + self.nn[shared_n], n_t + n_n + self.dd[shared_d]])
        weights = np.concatenate(
            [
                (column_weights(self.track_deg) * (0.2 + 0.8 * self.burst))[self.et[bursty]],
                _per_account(column_weights(self.net_deg)[self.nn], self.nu, self.n_users)[shared_n],
                _per_account(column_weights(self.dev_deg)[self.dd], self.du, self.n_users)[shared_d],
            ]
        )
        n_cols = n_t + n_n + len(self.dev_ids)
        prior = prior_weight * self.behaviour**2
        return Graph(rows.astype(np.int32), cols.astype(np.int32), weights, prior, np.zeros(n_cols))

    def candidates(self, config: DetectorConfig, *, mature: bool) -> list[_Candidate]:
        """Alert-worthy blocks; graph-only evidence counts only once the stream is ``mature``."""
        graph = self.graph(config.prior_weight, config.min_burst)
        found = []
        misses = 0
        for block in top_blocks(graph, k=config.max_blocks, min_rows=config.min_members):
            cand = self._judge(block, graph, config, mature=mature)
            if cand is not None:
                found.append(cand)
                misses = 0
            else:
                misses += 1
                if misses == 2:  # blocks only get sparser from here: two ordinary ones in a row end the search
                    break
        return found

    def _judge(self, block: Block, graph: Graph, config: DetectorConfig, *, mature: bool) -> _Candidate | None:
        n_t, n_n = len(self.track_ids), len(self.net_ids)
        in_rows = np.zeros(self.n_users, dtype=bool)
        in_rows[block.rows] = True
        in_cols = np.zeros(graph.col_prior.shape[0], dtype=bool)
        in_cols[block.cols] = True
        inside = in_rows[graph.rows] & in_cols[graph.cols]
        ties = np.bincount(graph.rows[inside], weights=graph.weights[inside], minlength=self.n_users)
        # members: rows tied to the block as strongly as its typical row (drops fans touching one target);
        # "typical" is measured on the rows that behave like bots when there are enough of them
        botlike = in_rows & (self.behaviour >= config.bot_behaviour)
        typical = float(np.median(ties[botlike] if botlike.sum() >= 5 else ties[block.rows]))
        keep = in_rows & (ties >= 0.5 * typical) & ((self.behaviour >= 0.25) | (ties >= typical))
        keep |= botlike
        members = np.flatnonzero(keep)
        if len(members) < config.min_members:
            return None
        # tracks: block columns whose window audience is mostly these members
        on_track = keep[self.eu] & in_cols[self.et]
        block_users = np.bincount(self.et[on_track], minlength=n_t)
        member_plays = np.bincount(self.ev_t[keep[self.ev_u]], minlength=n_t).astype(np.float64)
        baseline = self.window_plays / np.maximum(self.burst, 1e-9)
        # a block's track: several members, most of its window audience, most of its multi-day plays
        track_mask = (
            in_cols[:n_t]
            & (block_users >= 3)
            & (block_users >= 0.5 * self.track_deg)
            & (member_plays >= 0.5 * baseline)
        )
        tracks = np.flatnonzero(track_mask)
        edges_in = float((keep[self.eu] & track_mask[self.et]).sum())
        total = float(len(self.eu))
        expected = self.user_deg[members].sum() * self.track_deg[tracks].sum() / max(total, 1.0)
        lift = edges_in / max(expected, 1e-9)
        # the graph speaks when a sizeable group shares several tracks it owns (a single shared track is
        # what every audience has) and those tracks are a real part of what the members play
        per_member = edges_in / len(members)
        concentration = edges_in / max(float(self.user_deg[members].sum()), 1.0)
        graph_speaks = (
            mature
            and len(members) >= config.min_graph_members
            and len(tracks) >= 2
            and per_member >= 2.0
            and concentration >= config.min_concentration
        )
        behaviour = float(self.behaviour[members].mean())
        if not graph_speaks and behaviour < config.bot_behaviour:
            return None
        nets = block.cols[(block.cols >= n_t) & (block.cols < n_t + n_n)] - n_t
        devs = block.cols[block.cols >= n_t + n_n] - n_t - n_n
        signals = {
            name: float((values[members] >= 0.5).mean())
            for name, values in self.evidence.items()
            if name in SIGNAL_WEIGHTS
        }
        signals.update(
            {
                "block_density": block.density,
                "lift": lift,
                "concentration": concentration,
                "tracks_per_member": per_member,
                "mean_behaviour": behaviour,
                "members": float(len(members)),
                "tracks": float(len(tracks)),
                "shared_networks": float(len(nets)),
                "shared_devices": float(len(devs)),
            }
        )
        structure = concentration * min(1.0, per_member / 4.0) if graph_speaks else 0.0
        size = min(1.0, math.log1p(len(members)) / math.log1p(50))
        score = (1.0 - (1.0 - 0.8 * structure) * (1.0 - 0.9 * behaviour)) * size
        return _Candidate(
            self.users[members].astype(np.int32),
            self.track_ids[tracks].astype(np.int32),
            self.net_ids[nets].astype(np.int32),
            self.dev_ids[devs].astype(np.int32),
            score,
            signals,
        )


def _infra(local_u: npt.NDArray[np.intp], keys: I32) -> tuple[I32, I32, I32]:
    """Distinct (account, infrastructure) pairs: (infrastructure ids, pair rows, pair columns)."""
    known = keys >= 0
    if not known.any():
        empty = np.zeros(0, dtype=np.int32)
        return empty, empty, empty
    ids, local_k = np.unique(keys[known], return_inverse=True)
    pairs = np.unique(local_u[known].astype(np.int64) * len(ids) + local_k)
    return ids.astype(np.int32), (pairs // len(ids)).astype(np.int32), (pairs % len(ids)).astype(np.int32)


def _creation_burst(rows: I32, cols: I32, young: npt.NDArray[np.bool_], created: F64, degree: F64, n: int) -> F64:
    """Evidence that an account was created in a burst: many young accounts, opened within the same
    two hours, on one address block or device, and a large share of those it serves.

    A carrier-NAT /24 sees new accounts every day, spread out and among hundreds of old ones; a farm's
    block sees dozens opened together and little else.
    """
    pick = young[rows]
    if not pick.any():
        return np.zeros(n)
    r, c = rows[pick], cols[pick]
    bucket = np.floor(created[r] / 7200.0).astype(np.int64)
    keys = c.astype(np.int64) * (1 << 32) + (bucket & 0xFFFFFFFF)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    together = counts[inverse].astype(np.float64)
    strength = ramp(together, 3.0, 10.0) * ramp(together / np.maximum(degree[c], 1.0), 0.2, 0.5)
    return _max_over(r, strength, n)


def _per_account(weights: F64, rows: I32, n: int) -> F64:
    """Split each account's infrastructure weight over its distinct addresses (or devices).

    A phone on a carrier's NAT pool hops across many /24s; a farm bot sits on
    one.  Without this, mobile listeners and their carrier's pool would look
    like a dense block.
    """
    count = np.bincount(rows, minlength=n).astype(np.float64)
    out: F64 = weights / np.maximum(count[rows], 1.0)
    return out


def _max_over(rows: I32, values: npt.NDArray[Any], n: int) -> F64:
    out = np.zeros(n)
    np.maximum.at(out, rows, values)
    return out


__all__ = ["Alert", "DetectorConfig", "IntakeStats", "StreamDetector"]
