"""Legitimate listeners: diurnal sessions, favourites, album runs, skips, searches, a player in real time.

Users are heavy (6-8 h a day in two long sessions), regular or casual; most
signed up long before the simulation (their accounts are created at a past
simulated time), about a fifth sign up during it.  Anonymous visitors never
sign up: they browse and try a few tracks, and get what the server's
anonymous-audio policy gives them (reported apart from account holders).  About a tenth sit behind
a few shared NAT addresses.  The player fetches audio like a browser:
``bytes=0-`` first (the server sends the 30 s it allows), then every 25 s
the range up to 28 s ahead of the play position, and reports the position
every ~50 s and when it stops (a ``pause`` report when it stops early).  On
a tenth of its plays the listener jumps back up to 20 s to hear a passage
again (a ``seek`` report; the audio is already fetched); on 5 % it jumps 10-25 s
ahead (a ``seek`` report); on 8 % it pauses for 1-40 minutes (``pause``, then
``resume``), asking for a new stream URL when the old one expired meanwhile.
Besides family NATs, a campus NAT address carries a crowd of users, and
binge listeners play an artist's albums in upload order, on into the next artist.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import math
import random
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

from consentune.bench.shieldsim.catalogue import Catalogue, CatalogueTrack
from consentune.bench.shieldsim.client import (
    Budget,
    GroupStats,
    Reply,
    ScopeAudio,
    SimClient,
    random_address,
    reason_of,
)

DAY_S = 86400.0
HOUR_S = 3600.0
TICK_S = 25.0
LOOKAHEAD_S = 28.0
REPLAY_SHARE = 0.1  # plays on which the listener seeks back to hear a passage again
SEEK_AHEAD_SHARE = 0.05  # plays on which the listener jumps 10-25 s ahead
PAUSE_SHARE = 0.08  # plays paused for 1-40 minutes, then resumed
MAX_PAUSE_S = 40 * 60.0
# share of sessions starting in each hour of the day (UTC; one time zone)
DIURNAL = (3, 2, 1, 1, 1, 1, 2, 4, 6, 6, 5, 5, 6, 6, 5, 5, 6, 7, 8, 9, 10, 10, 8, 5)
_WEBKIT = "AppleWebKit/537.36 (KHTML, like Gecko)"
BROWSER_AGENTS = (
    f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_WEBKIT} Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    f"Mozilla/5.0 (Linux; Android 14; Pixel 8) {_WEBKIT} Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_WEBKIT} Chrome/131.0.0.0 Safari/537.36",
    f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_WEBKIT} Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
)


class SessionOver(Exception):
    """The listener gave up on this session (blocked)."""


@dataclass
class SessionRecord:
    """One legitimate session and whether the shield got in its way."""

    user: int
    kind: str
    nat: bool
    start: float
    nat_kind: str = ""  # "family" or "campus" for users behind a shared address
    account_id: str | None = None
    returning: bool = False  # the account existed before the simulation
    history: bool = False  # the account was established (stored) before this session: filled in after the run
    plays: int = 0
    resumes: int = 0  # plays resumed after a pause
    renewed_urls: int = 0  # stream URLs asked for again after a long pause
    continued: int = 0  # of those, plays the server continued (real-time budget kept from the play's start)
    challenged: bool = False
    blocked: bool = False
    throttled_other: bool = False
    throttled_ahead: int = 0
    anonymous: bool = False
    sign_in_asked: int = 0  # plays refused because the policy wants an account
    previews: int = 0  # plays limited to a preview
    reasons: list[str] = field(default_factory=list)
    limited: int = 0  # plays or fetches refused by the newcomer budget

    @property
    def hindered(self) -> bool:
        return self.challenged or self.blocked or self.throttled_other or self.limited > 0


@dataclass
class User:
    index: int
    kind: str
    address: str
    nat: bool
    user_agent: str
    signs_up_at: float | None  # None: signs up at its first session
    favourites: list[int]
    sessions: list[tuple[float, float]]  # (start, length) in simulated seconds
    anonymous: bool = False  # a visitor who never signs up
    nat_kind: str = ""


class Popularity:
    """Zipf popularity (exponent ``s``) over a random permutation of the catalogue."""

    def __init__(self, n: int, rng: random.Random, *, s: float = 0.9) -> None:
        self.order = list(range(n))
        rng.shuffle(self.order)
        weights = [1.0 / (rank + 1) ** s for rank in range(n)]
        self.cumulative = list(itertools.accumulate(weights))

    def pick(self, rng: random.Random) -> int:
        rank = bisect.bisect_left(self.cumulative, rng.random() * self.cumulative[-1])
        return self.order[min(rank, len(self.order) - 1)]


def make_users(
    rng: random.Random,
    *,
    sessions: int,
    start: float,
    days: float,
    popularity: Popularity,
    nat_share: float = 0.1,
    nat_addresses: int = 3,
    campus_share: float = 0.08,
) -> list[User]:
    """Users until their sessions add up to ``sessions``; ``nat_share`` of them behind ``nat_addresses``
    family NATs, ``campus_share`` behind one campus NAT address."""
    nats = [random_address(rng, (100,)) for _ in range(nat_addresses)]
    campus = random_address(rng, (130,))
    users: list[User] = []
    planned = 0
    while planned < sessions:
        i = len(users)
        kind = rng.choices(("heavy", "regular", "binge", "casual"), weights=(0.05, 0.30, 0.05, 0.60))[0]
        where = rng.random()
        nat_kind = "family" if where < nat_share else "campus" if where < nat_share + campus_share else ""
        nat = bool(nat_kind)
        address = (nats[i % len(nats)] if nat_kind == "family" else campus if nat_kind == "campus"
                   else random_address(rng, (77, 81, 86, 90, 94)))  # fmt: skip
        plan = _sessions(rng, kind, start, days)[: sessions - planned]
        if not plan:
            continue
        new = rng.random() < 0.2
        history = 0 if new else rng.randint(5, 30)
        signs_up_at = None if new else start - rng.uniform(7, 700) * DAY_S
        users.append(User(i, kind, address, nat, rng.choice(BROWSER_AGENTS), signs_up_at,
                          [popularity.pick(rng) for _ in range(history)], plan, nat_kind=nat_kind))  # fmt: skip
        planned += len(plan)
    return users


def make_visitors(rng: random.Random, *, sessions: int, start: float, days: float) -> list[User]:
    """Anonymous visitors: one casual visit each (10-45 min) at a diurnal time, from their own address."""
    visitors = []
    for i in range(sessions):
        day = rng.randrange(max(1, math.ceil(days)))
        hour = rng.choices(range(24), weights=DIURNAL)[0]
        at = start + day * DAY_S + (hour + rng.random()) * HOUR_S
        if at >= start + days * DAY_S:
            at = start + rng.uniform(0, days * DAY_S)
        visitors.append(User(100_000 + i, "visitor", random_address(rng, (77, 81, 86, 90, 94)), False,
                             rng.choice(BROWSER_AGENTS), None, [], [(at, rng.uniform(10, 45) * 60)],
                             anonymous=True))  # fmt: skip
    return visitors


def _sessions(rng: random.Random, kind: str, start: float, days: float) -> list[tuple[float, float]]:
    plan: list[tuple[float, float]] = []
    for day in range(math.ceil(days)):
        base = start + day * DAY_S
        if kind == "heavy":
            plan.append((base + rng.uniform(7.5, 10) * HOUR_S, rng.uniform(3, 4) * HOUR_S))
            plan.append((base + rng.uniform(16, 19) * HOUR_S, rng.uniform(3, 4) * HOUR_S))
            continue
        regular = kind in ("regular", "binge")
        count = (rng.random() < 0.75) + (rng.random() < 0.3) if regular else int(rng.random() < 0.4)
        for _ in range(count):
            hour = rng.choices(range(24), weights=DIURNAL)[0]
            length = rng.uniform(30, 120) if kind in ("regular", "binge") else rng.uniform(10, 45)
            plan.append((base + (hour + rng.random()) * HOUR_S, length * 60))
    plan.sort()
    kept: list[tuple[float, float]] = []
    for at, length in plan:  # one session at a time
        if not kept or at >= kept[-1][0] + kept[-1][1] + 600:
            kept.append((at, length))
    return [(at, length) for at, length in kept if at < start + days * DAY_S]


class ListenerAgent:
    """One user across the whole simulation: one browser (cookies kept), one account."""

    def __init__(
        self,
        user: User,
        *,
        base_url: str,
        group: GroupStats,
        budget: Budget,
        catalogue: Catalogue,
        popularity: Popularity,
        records: list[SessionRecord],
        seed: int,
        newcomer_audio: ScopeAudio | None = None,
    ) -> None:
        self.user = user
        newcomer = user.signs_up_at is None and not user.anonymous
        self.client = SimClient(base_url=base_url, group=group, budget=budget, address=user.address,
                                user_agent=user.user_agent,
                                scope_audio=newcomer_audio if newcomer else None)  # fmt: skip
        self.tracks = catalogue.tracks
        self.popularity = popularity
        self.records = records
        self.rng = random.Random(seed)
        self.record: SessionRecord | None = None

    def run(self) -> Generator[float, float, None]:
        u = self.user
        try:
            first = u.signs_up_at if u.signs_up_at is not None else u.sessions[0][0]
            now = yield first
            if u.signs_up_at is not None:
                self.client.sign_up(now)
            for start, length in u.sessions:
                now = yield max(now, start)
                self.record = SessionRecord(u.index, u.kind, u.nat, now, nat_kind=u.nat_kind,
                                            account_id=self.client.account_id, returning=u.signs_up_at is not None,
                                            anonymous=u.anonymous)  # fmt: skip
                self.records.append(self.record)
                with contextlib.suppress(SessionOver):
                    now = yield from self._session(now, now + length)
        finally:
            self.client.close()

    def _note(self, reply: Reply) -> Reply:
        record = self.record
        if record is None:
            return reply
        if reply.challenged:
            record.challenged = True
            record.reasons.append(_why(reply))
        if reply.blocked:
            record.blocked = True
            record.reasons.append(_why(reply))
            raise SessionOver
        if reply.code == "newcomer_limit":
            record.limited += 1
            record.reasons.append("newcomer_limit")
        if reply.code == "sign_in_required":
            record.sign_in_asked += 1
            raise SessionOver  # a visitor asked to sign up leaves (visitors never sign up here)
        if reply.status == 429:
            if reply.ahead:
                record.throttled_ahead += 1
            else:
                record.throttled_other = True
                record.reasons.append(_why(reply))
        return reply

    def _session(self, now: float, until: float) -> Generator[float, float, float]:
        c = self.client
        if c.account_token is None and not self.user.anonymous:
            self._note(c.sign_up(now))
            now += 2.0
            assert self.record is not None
            self.record.account_id = c.account_id
        self._note(c.start_session(now))
        for _ in range(self.rng.randint(1, 2)):
            offset = self.rng.randrange(0, max(1, len(self.tracks) - 50))
            self._note(c.call("GET", "/v1/listen/catalog", now=now, params={"offset": offset, "limit": 50}))
            now = yield now + self.rng.uniform(2, 10)
        last: int | None = None
        while now < until:
            index, now = yield from self._choose(now, last)
            track = self.tracks[index]
            if self.rng.random() < 0.4:
                self._note(c.call("GET", f"/v1/listen/tracks/{track.id}", now=now))
            skip = self.rng.random() < 0.2
            fraction = 1.0 if self.rng.random() < 0.5 else self.rng.uniform(0.6, 1.0)
            listen_s = self.rng.uniform(5, 40) if skip else track.duration_s * fraction
            now = yield from self._listen(track, now, min(listen_s, track.duration_s))
            if not skip and fraction == 1.0 and self.rng.random() < 0.3:
                self.user.favourites.append(index)
            last = index
            now = yield now + self.rng.uniform(0.5, 3.0)
        return now

    def _choose(self, now: float, last: int | None) -> Generator[float, float, tuple[int, float]]:
        rng, favourites = self.rng, self.user.favourites
        if self.user.kind == "binge" and last is not None and last + 1 < len(self.tracks) and rng.random() < 0.95:
            return last + 1, now  # the discography in upload order, on into the next artist
        album_goes_on = (
            last is not None
            and last + 1 < len(self.tracks)
            and self.tracks[last + 1].artist == (self.tracks[last].artist)
        )
        if last is not None and album_goes_on and rng.random() < 0.35:  # the rest of the album
            return last + 1, now
        if favourites and rng.random() < min(0.5, 0.05 * len(favourites)):
            return rng.choice(favourites), now
        if rng.random() < 0.12:
            word = rng.choice(self.tracks[self.popularity.pick(rng)].title.split()[:2])
            reply = self._note(self.client.call("GET", "/v1/listen/search", now=now, params={"q": word}))
            now = yield now + rng.uniform(3, 12)
            if reply.status == 200 and reply.data:
                return int(rng.choice(reply.data)["index"]), now
        return self.popularity.pick(rng), now

    def _listen(self, track: CatalogueTrack, now: float, listen_s: float) -> Generator[float, float, float]:
        """Play ``listen_s`` seconds of ``track`` like a browser player; returns the time it stopped."""
        c, rng, record = self.client, self.rng, self.record
        reply = self._note(c.play(track.id, now))
        if reply.status != 200:
            return now + 1.0
        assert record is not None
        record.plays += 1
        record.previews += "preview_s" in reply.data
        url = str(reply.data["stream_url"])
        offset, size, ticks = 0, 0, 0
        played = 0.0  # seconds of listening so far (wall time spent playing, pauses excluded)
        shift = 0.0  # the play position minus ``played``: negative after seeking back, positive after skipping on
        replay_at = rng.uniform(0.3, 0.8) * listen_s if rng.random() < REPLAY_SHARE else None
        ahead_at = rng.uniform(0.1, 0.6) * listen_s if rng.random() < SEEK_AHEAD_SHARE else None
        pause_at = rng.uniform(0.1, 0.9) * listen_s if rng.random() < PAUSE_SHARE else None
        while True:
            position = min(track.duration_s, played + shift)
            if offset >= 0:
                end = None if not size else min(size - 1, int(size * (position + LOOKAHEAD_S) / track.duration_s))
                if end is None or end >= offset:
                    fetched, next_offset = c.fetch(url, now, start=offset, end=end)
                    self._note(fetched)
                    if fetched.status == 206:
                        size, offset = content_total(fetched), next_offset
                    elif fetched.status == 403 and fetched.code == "forbidden" and "expired" in str(fetched.data):
                        # the URL expired during a pause: continue that play with a new URL
                        renewed = self._note(c.play(track.id, now, resume=url))
                        if renewed.status != 200:
                            return now
                        url, record.renewed_urls = str(renewed.data["stream_url"]), record.renewed_urls + 1
                        record.continued += bool(renewed.data.get("resumed"))
                        # the detector sees a new play: say where playback resumes in it
                        self._note(c.progress(track.id, position, now, event="resume"))
                        continue
                    elif fetched.status == 403:  # the preview is over, or refused: next track
                        return now
            if played >= listen_s - 1e-6 or position >= track.duration_s:
                break
            step = min(TICK_S, listen_s - played)
            now = yield now + step
            played += step
            ticks += 1
            position = min(track.duration_s, played + shift)
            if pause_at is not None and played >= pause_at:
                pause_at = None
                self._note(c.progress(track.id, position, now, event="pause"))
                now = yield now + rng.uniform(60.0, MAX_PAUSE_S)
                self._note(c.progress(track.id, position, now, event="resume"))
                record.resumes += 1
            elif replay_at is not None and played >= replay_at:
                replay_at, shift = None, shift - min(20.0, position)
                self._note(c.progress(track.id, played + shift, now, event="seek"))
            elif ahead_at is not None and played >= ahead_at:
                ahead_at, shift = None, shift + min(rng.uniform(10.0, 25.0), track.duration_s - position - 5.0)
                self._note(c.progress(track.id, played + shift, now, event="seek"))
            elif ticks % 2 == 0 and played < listen_s - 1e-6:
                self._note(c.progress(track.id, position, now))
        stopped_early = listen_s < track.duration_s - 1.0
        position = min(track.duration_s, played + shift)
        self._note(c.progress(track.id, position, now, event="pause" if stopped_early else "tick"))
        return now


def content_total(reply: Reply) -> int:
    """The full size from a 206 reply's Content-Range (kept in ``data``)."""
    return int(str(reply.data).rsplit("/", 1)[1])


def _why(reply: Reply) -> str:
    if isinstance(reply.data, dict):
        return reason_of(reply.data)
    return str(reply.status)


def visitor_summary(records: Sequence[SessionRecord]) -> dict[str, object]:
    """Anonymous visitors: what the anonymous-audio policy and the detector did to them."""
    return {
        "sessions": len(records),
        "plays_served": sum(r.plays for r in records),
        "previews": sum(r.previews for r in records),
        "asked_to_sign_in": sum(r.sign_in_asked > 0 for r in records),
        "hindered_by_shield": sum(r.hindered for r in records),
        "hindered_examples": [r.reasons[:3] for r in records if r.hindered][:5],
    }


def legit_summary(records: Sequence[SessionRecord]) -> dict[str, object]:
    hindered = [r for r in records if r.hindered]
    return {
        "sessions": len(records),
        "users": len({r.user for r in records}),
        "nat_sessions": sum(r.nat for r in records),
        "campus_sessions": sum(r.nat_kind == "campus" for r in records),
        "heavy_sessions": sum(r.kind == "heavy" for r in records),
        "binge_sessions": sum(r.kind == "binge" for r in records),
        "sessions_with_history": sum(r.history for r in records),
        "resumes": sum(r.resumes for r in records),
        "renewed_urls": sum(r.renewed_urls for r in records),
        "continued_plays": sum(r.continued for r in records),
        "hindered_with_history": sum(r.history for r in hindered),
        "plays": sum(r.plays for r in records),
        "hindered": len(hindered),
        "hindered_pct": 100.0 * len(hindered) / max(1, len(records)),
        "challenged": sum(r.challenged for r in records),
        "blocked": sum(r.blocked for r in records),
        "rate_limited_other": sum(r.throttled_other for r in records),
        "newcomer_limited": sum(r.limited for r in records),
        "newcomer_limited_sessions": sum(r.limited > 0 for r in records),
        # hindered plays: each newcomer-budget refusal, plus one per session that met a challenge, block or limit
        "hindered_plays_pct": 100.0
        * sum(r.limited + (r.challenged or r.blocked or r.throttled_other) for r in records)
        / max(1, sum(r.plays for r in records)),
        "stream_ahead_429s": sum(r.throttled_ahead for r in records),
        "hindered_examples": [
            {
                "user": r.user,
                "kind": r.kind,
                "nat": r.nat_kind,
                "start": r.start,
                "history": r.history,
                "returning": r.returning,
                "reasons": r.reasons[:3],
            }
            for r in hindered[:10]
        ],
    }


__all__ = [
    "BROWSER_AGENTS",
    "ListenerAgent",
    "Popularity",
    "SessionRecord",
    "User",
    "legit_summary",
    "make_users",
    "make_visitors",
    "visitor_summary",
]
