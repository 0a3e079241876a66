"""Scraper strategies: each a set of workers (identities) with one or more concurrent plays.

A play asks for a stream URL and then fetches ``bytes=<next>-`` as fast as
the server allows: the server sends up to real time + 30 s and answers 429
with ``Retry-After`` beyond that.  Bytes obtained depend on time, not on the
cadence, so the downloader comes back when the whole rest of the track is
due (the play's start + the track's duration - the 30-s lead, as the play
answer's ``duration_s`` tells it), or after ``REPORT_S`` when it fakes
progress reports: polling more often would fetch the same bytes in more,
smaller requests, and polling on a fixed clock would notice each track's end
late and *under*-state what an eager downloader gets.  A scraper told to
sign in (anonymous strategies under the default policy) tries again hourly.
Every scraper solves proof-of-work challenges (cheap for it) and, when
blocked, starts over with a new identity after a back-off: the measure is the
audio it gets, not whether it is ever stopped.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from dataclasses import dataclass

from consentune.bench.shieldsim.catalogue import Catalogue, CatalogueTrack
from consentune.bench.shieldsim.client import Budget, GroupStats, SimClient, random_address
from consentune.bench.shieldsim.listeners import BROWSER_AGENTS, DAY_S, HOUR_S, content_total

POLL_S = 5.0  # the shortest wait between fetches
REPORT_S = 120.0  # how often a scraper faking progress reports a position
LEAD_S = 30.0  # what the server serves beyond real time
SIGN_IN_BACKOFF_S = 3600.0
MAX_BACKOFF_S = 3600.0  # a refused scraper probes at least hourly


@dataclass(frozen=True)
class Strategy:
    """How one scraper behaves.  Times in seconds."""

    name: str
    description: str
    workers: int = 1  # identities running at once
    lanes: int = 1  # concurrent plays per identity
    user_agent: str = BROWSER_AGENTS[0]
    rotate_agent: bool = False  # a new browser user agent on every request
    forge_xff: bool = False  # writes a random X-Forwarded-For itself
    address_pool: int = 1  # real public addresses it can use (residential proxies)
    one_subnet: bool = False  # the addresses share one /24 (a hosting or proxy block)
    account: bool = False  # signs up and uses an account
    tracks_per_identity: int = 0  # 0: keep the identity until blocked; else rotate after this many tracks
    fake_progress: bool = False  # reports plausible playback positions and lingers to the track's end
    keep_cookies: bool = True
    walk: bool = False  # walks the catalogue in order; otherwise picks tracks at random
    reads_robots: bool = False  # fetches robots.txt (and ignores it)
    hours_per_day: float = 24.0  # active hours each simulated day (in two windows when < 24)
    new_identity_per_day: bool = False
    block_backoff_s: float = 300.0  # doubles with each refusal in a row, up to MAX_BACKOFF_S
    lead_only: bool = False  # fetches only what a play gives at once (the lead), never reports progress
    warmup_tracks: int = 0  # sleeper: plays this many tracks honestly, then sleeps until ``sleep_s`` has passed
    sleep_s: float = 0.0


STRATEGIES: tuple[Strategy, ...] = (
    Strategy("naive", "walks /catalog, 8 plays at once, one UA, no progress, ignores robots.txt, retries 429",
             lanes=8, user_agent="python-requests/2.32.3", keep_cookies=False, walk=True),
    Strategy("ai_crawler", "like naive but announces itself as GPTBot (reads robots.txt, ignores it)",
             lanes=8, user_agent="Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
             "+https://openai.com/gptbot)", keep_cookies=False, walk=True, reads_robots=True),
    Strategy("ua_rotation", "a new random browser UA on every request, 4 plays at once, random order",
             lanes=4, rotate_agent=True),
    Strategy("xff_forged", "writes a random X-Forwarded-For on every request, 4 plays at once",
             lanes=4, forge_xff=True),
    Strategy("residential", "4 workers over a pool of 200 residential addresses; new address and session "
             "every 3 tracks", workers=4, address_pool=200, tracks_per_identity=3),
    Strategy("slow_low", "one play at a time in real time with plausible progress, 3 h a day, a new "
             "session every day", fake_progress=True, hours_per_day=3.0, new_identity_per_day=True),
    Strategy("cheap_accounts", "4 workers, each signs up a new account every 5 tracks, no progress",
             workers=4, account=True, tracks_per_identity=5),
    Strategy("browser_like", "keeps cookies and an account, plausible progress, 3 plays at once, 24/7",
             lanes=3, account=True, fake_progress=True),
    Strategy("accounts_browser", "cheap accounts + browser-like: 4 workers, each a new account every 5 "
             "tracks, plausible progress", workers=4, account=True, tracks_per_identity=5, fake_progress=True),
    # adapted to sign-in, one stream per listener, pooled newcomer evidence and ban-evasion lockdowns
    Strategy("residential_accounts", "4 workers over 200 residential addresses, a new account and address "
             "every 5 tracks, one play at a time, plausible progress", workers=4, address_pool=200, account=True,
             tracks_per_identity=5, fake_progress=True),
    Strategy("subnet_accounts", "like residential_accounts, over 200 addresses of one /24 (a hosting block)",
             workers=4, address_pool=200, one_subnet=True, account=True, tracks_per_identity=5,
             fake_progress=True),
    Strategy("slow_low_account", "slow_low signed in: one play at a time in real time, plausible progress, "
             "3 h a day, a new account every day", account=True, fake_progress=True, hours_per_day=3.0,
             new_identity_per_day=True),
    # identity cost: many identities, each a plausible listener (issue 20)
    Strategy("account_farm", "16 accounts behind one address, each one real-time play at a time with "
             "plausible progress, 24/7", workers=16, account=True, fake_progress=True),
    Strategy("prefix_hopping", "8 workers, a fresh account on a fresh /24 every 5 tracks, real time, plausible "
             "progress", workers=8, address_pool=5000, account=True, tracks_per_identity=5, fake_progress=True),
    Strategy("sleeper", "10 accounts behind one address play 3 honest tracks, sleep 3 days, then harvest in real "
             "time", workers=10, account=True, fake_progress=True, warmup_tracks=3, sleep_s=3 * DAY_S),
    Strategy("lead_skimming", "4 accounts behind one address start play after play and fetch only the lead, "
             "never reporting progress", workers=4, account=True, lead_only=True),
)  # fmt: skip


class TrackQueue:
    """The tracks a strategy still wants, in walk or random order, shared by its workers."""

    def __init__(self, catalogue: Catalogue, rng: random.Random, *, walk: bool) -> None:
        self.tracks = list(catalogue.tracks)
        self.order = list(range(len(self.tracks)))
        if not walk:
            rng.shuffle(self.order)
        self.next = 0

    def take(self) -> CatalogueTrack | None:
        if self.next >= len(self.order):
            return None
        self.next += 1
        return self.tracks[self.order[self.next - 1]]


class Identity:
    """A worker's current client (address, session, account); renewed when blocked or on rotation."""

    def __init__(self, strategy: Strategy, *, base_url: str, group: GroupStats, budget: Budget, rng: random.Random,
                 pool: list[str]) -> None:  # fmt: skip
        self.strategy, self.base_url, self.group, self.budget, self.rng, self.pool = (
            strategy, base_url, group, budget, rng, pool)  # fmt: skip
        self.client: SimClient | None = None
        self.generation = 0
        self.tracks_done = 0
        self.lanes = strategy.lanes
        self.refusals = 0  # refusals in a row: each doubles the back-off (a farm does not hammer a closed door)

    def backoff_s(self) -> float:
        self.refusals += 1
        return min(MAX_BACKOFF_S, self.strategy.block_backoff_s * 2.0 ** (self.refusals - 1))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def renew(self, now: float, *, generation: int) -> Generator[float, float, float]:
        """A new session (and account, address) unless another lane already renewed this generation."""
        if generation != self.generation:
            return now
        self.generation += 1
        s = self.strategy
        address = self.rng.choice(self.pool)
        if self.client is None or s.address_pool > 1:
            self.close()
            agent = (lambda: self.rng.choice(BROWSER_AGENTS)) if s.rotate_agent else s.user_agent
            forged = (lambda: random_address(self.rng, (23, 52, 104, 151, 185))) if s.forge_xff else None
            self.client = SimClient(base_url=self.base_url, group=self.group, budget=self.budget, address=address,
                                    user_agent=agent, keep_cookies=s.keep_cookies, forged_xff=forged)  # fmt: skip
        c = self.client
        self.tracks_done = 0
        c.forget_session()  # a new identity: the blocked session's cookie must not come along
        while True:
            if s.account:
                reply = c.sign_up(now)
                if reply.status != 201:
                    now = yield now + max(1.0, reply.retry_after_s or self.backoff_s())
                    continue
            reply = c.start_session(now)
            if reply.status == 201:
                return now + 0.5
            now = yield now + max(1.0, reply.retry_after_s or self.backoff_s())


class ScraperWorker:
    """One identity with ``lanes`` concurrent plays; each lane is its own agent sharing the identity."""

    def __init__(self, strategy: Strategy, *, identity: Identity, queue: TrackQueue, start: float, end: float,
                 rng: random.Random) -> None:  # fmt: skip
        self.s, self.identity, self.queue, self.start, self.end, self.rng = strategy, identity, queue, start, end, rng
        self.windows = _windows(strategy, start, end, rng)

    def lanes(self) -> list[Generator[float, float, None]]:
        return [self._lane(i) for i in range(self.s.lanes)]

    def _lane(self, lane: int) -> Generator[float, float, None]:
        ident = self.identity
        try:
            now = yield self.start + lane * 2.0
            if lane == 0:
                if self.s.reads_robots:
                    c = ident.client
                    assert c is not None
                    c.call("GET", "/robots.txt", now=now)
                now = yield from ident.renew(now, generation=ident.generation)
            day = -1
            if self.s.warmup_tracks and lane == 0:
                now = yield from self._warm_up(now)
            while True:
                now = yield from self._wait_active(now)
                if self.s.new_identity_per_day and lane == 0 and int((now - self.start) // DAY_S) != day:
                    day = int((now - self.start) // DAY_S)
                    if day > 0:
                        now = yield from ident.renew(now, generation=ident.generation)
                if ident.client is None or ident.client.session_id is None:
                    now = yield now + 5.0
                    continue
                if self.s.walk and self.queue.next % 100 == 0:  # the crawler reads the next catalogue page
                    ident.client.call("GET", "/v1/listen/catalog", now=now,
                                      params={"offset": self.queue.next, "limit": 100})  # fmt: skip
                track = self.queue.take()
                if track is None:
                    return
                now = yield from self._download(track, now)
                ident.tracks_done += 1
                if self.s.tracks_per_identity and ident.tracks_done >= self.s.tracks_per_identity:
                    now = yield from ident.renew(now, generation=ident.generation)
        finally:
            ident.lanes -= 1
            if ident.lanes == 0:
                ident.close()

    def _warm_up(self, now: float) -> Generator[float, float, float]:
        """A sleeper: a few honest plays (what counts as listening history), then nothing until it wakes."""
        for _ in range(self.s.warmup_tracks):
            track = self.queue.take()
            if track is None:
                break
            now = yield from self._download(track, now)
        return (yield max(now, self.start + self.s.sleep_s))

    def _wait_active(self, now: float) -> Generator[float, float, float]:
        for a, b in self.windows:
            if now < a:
                return (yield a)
            if now < b:
                return now
        return (yield self.end + 1.0)

    def _download(self, track: CatalogueTrack, now: float) -> Generator[float, float, float]:
        """Fetch the whole track as fast as the server allows; on a block, renew and resume."""
        ident, s = self.identity, self.s
        offset, size = 0, 0
        while offset >= 0:
            c, generation = ident.client, ident.generation
            assert c is not None
            reply = c.play(track.id, now)
            if reply.status == 429:
                now = yield now + max(1.0, reply.retry_after_s)
                continue
            if reply.status != 200:  # blocked, or the session is unusable
                now = yield now + (SIGN_IN_BACKOFF_S if reply.code == "sign_in_required" else ident.backoff_s())
                now = yield from ident.renew(now, generation=generation)
                continue
            url, started, last_report, streamed = str(reply.data["stream_url"]), now, now, False
            if s.fake_progress:  # a player starts a new play from the top, so its positions stay consistent
                offset = 0
            while offset >= 0:
                if s.fake_progress and streamed and now - last_report >= REPORT_S - 1e-6:
                    c.progress(track.id, min(track.duration_s, now - started), now)
                    last_report = now
                fetched, next_offset = c.fetch(url, now, start=offset)
                if fetched.status == 206 and s.lead_only:  # the lead is all it wants: next track
                    return now + self.rng.uniform(0.5, 2.0)
                if fetched.status == 206:
                    size, offset, streamed = content_total(fetched), next_offset, True
                    ident.refusals = 0
                    continue
                if fetched.ahead or fetched.status == 429:
                    due = started + track.duration_s - LEAD_S + 1.0  # when the whole rest may be fetched
                    wake = min(due, last_report + REPORT_S) if s.fake_progress else due
                    now = yield max(now + POLL_S, now + fetched.retry_after_s, wake)
                    continue
                if fetched.blocked and generation == ident.generation:
                    now = yield now + ident.backoff_s()
                    now = yield from ident.renew(now, generation=generation)
                else:  # the URL belongs to an old session or expired: play again
                    now = yield now + 1.0
                break
        if s.fake_progress and size and ident.client is not None:  # linger to the end like a player, say so
            end = started + track.duration_s
            if end > now:
                now = yield end
            ident.client.progress(track.id, track.duration_s, now)
        return now + self.rng.uniform(0.5, 2.0)


def _windows(s: Strategy, start: float, end: float, rng: random.Random) -> list[tuple[float, float]]:
    if s.hours_per_day >= 24:
        return [(start, end)]
    windows: list[tuple[float, float]] = []
    day = start
    while day < end:
        half = s.hours_per_day / 2 * HOUR_S
        for lo, hi in ((8.0, 13.0), (17.0, 23.0)):
            a = day + rng.uniform(lo, hi - s.hours_per_day / 2) * HOUR_S
            windows.append((a, a + half))
        day += DAY_S
    return windows


def scraper_agents(
    strategy: Strategy,
    *,
    base_url: str,
    group: GroupStats,
    budget: Budget,
    catalogue: Catalogue,
    start: float,
    end: float,
    rng: random.Random,
) -> list[Generator[float, float, None]]:
    """All agents (workers x lanes) of one strategy, sharing one track queue."""
    queue = TrackQueue(catalogue, rng, walk=strategy.walk)
    pool = [random_address(rng, (24, 67, 73, 98, 174)) for _ in range(strategy.address_pool)]
    if strategy.one_subnet:
        block = random_address(rng, (45, 88, 159, 193)).rsplit(".", 1)[0]
        pool = [f"{block}.{1 + i % 254}" for i in range(strategy.address_pool)]
    agents: list[Generator[float, float, None]] = []
    for w in range(strategy.workers):
        identity = Identity(strategy, base_url=base_url, group=group, budget=budget, rng=rng, pool=pool)
        if strategy.reads_robots:
            identity.client = SimClient(base_url=base_url, group=group, budget=budget, address=pool[0],
                                        user_agent=strategy.user_agent, keep_cookies=strategy.keep_cookies)  # fmt: skip
        worker = ScraperWorker(strategy, identity=identity, queue=queue, start=start + w * 60.0, end=end, rng=rng)
        agents.extend(worker.lanes())
    return agents


__all__ = ["STRATEGIES", "Strategy", "scraper_agents"]
