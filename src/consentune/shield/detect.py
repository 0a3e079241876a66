"""Behavioural scraper detection: a streaming score per session, account and address.

Every listener request becomes an :class:`AccessEvent`; :meth:`ScraperDetector.observe`
updates a few counters for the event's subjects in O(1) amortized time and
returns the strongest :class:`Verdict` among them, with the :class:`Signal`
objects that explain it in plain language.  Counters decay exponentially, so
"in the last hours" needs no event log, and idle subjects are forgotten.

Signals (thresholds in :class:`DetectorConfig`; weight ``w``; a signal at
its threshold adds ``w`` to the score, growing linearly up to ``2 w``):

``ai_crawler``
    The user agent names a known AI crawler (case-insensitive, whole-token
    match).  On ``play``/``stream`` this blocks outright.
``faster_than_realtime`` (w 1.0; session, account)
    Audio fetched beyond each play's 30 s buffer, per wall second, averaged
    over ~10 minutes.  One player cannot exceed 1.0 because the server caps
    each play at real time + 30 s; a scraper beats the cap only by running
    plays concurrently.  Threshold 1.5; 3.0 blocks alone.
``no_progress`` (w 1.0; all subjects)
    Plays that fetched over 60 s of audio, ran 45 s or more, and never
    reported a playback position.  Real players report; naive downloaders
    don't.  Three such plays (decaying over ~6 h) challenge, six block.
    Turn it off (``expect_progress=False``) for a player that never reports.
``impossible_progress`` (w 1.0; all subjects)
    A reported position no honest player can reach: beyond the wall time
    since the play's current segment began plus the 30 s buffer (plus 10 s
    slack), beyond the track's end, or audio reported as played before any
    byte was fetched.  The player says when it seeks, pauses or resumes
    (``player_event``): a ``seek`` or ``resume`` starts a new segment at the
    reported position (anywhere inside the track), so neither counts, and an
    unannounced jump counts once (the next reports are measured from it).
    Reports add up with a ~6 h decay; a sum of 2 challenges and 4 blocks, so
    no single odd report challenges or blocks on its own.
``catalogue_breadth`` (w 0.7; session, account)
    Many distinct tracks started (>= 40 over ~12 h) with almost no repeats
    (< 5 %).  Listeners come back to favourites; scrapers walk the catalogue.
    Weighted so that it challenges alone only from ~57 tracks.
``catalogue_walk`` (w 1.0; all subjects)
    A run of >= 20 consecutive plays stepping through the catalogue in one
    direction by 1-3 positions across at least 3 artists.  Albums give runs
    of ~10-15; a binge through one artist's albums in upload order gives long
    runs of one artist (possibly spilling into the next), which never count;
    an address shared by many listeners interleaves them and breaks runs.
``play_rate`` (w 0.7; session, account)
    More than 90 plays started per hour (~10 minute average): skipping
    through previews in bursts is human, sustaining it is not.
``daily_volume`` (w 1.0; session, account)
    Over 14 h of audio fetched in the last 24 hourly buckets.
``around_the_clock`` (w 0.5; session, account)
    Plays started in >= 20 of the last 24 hours: people sleep.
``user_agent_changes`` (w 1.0; session)
    Three or more user agents within one session cookie.
``newcomer_breadth`` (w 1.0; address, network prefix)
    Newcomers (anonymous sessions, accounts not yet established: 3 days old
    and 3 honest plays) at one address together streamed >= 40 distinct tracks
    (decaying over ~a day) with < 5 % repeats between them (x2 for a /24 or /48 prefix; raised by
    every established account seen there).  A crowd of new listeners
    overlaps on popular tracks; identities rotated by one scraper never do.

Infrastructure only *amplifies*: an address that saw a burst of sign-ups
(5 within 10 minutes) multiplies its behavioural score by 1.5, many young
accounts behind it by another 0.25; a young account (first seen < 3 days
ago, or created in such a burst) by 1.25-1.5.  A score of 0 stays 0, so 50
ordinary listeners behind one NAT address are never flagged for sharing it.

Escalation: score < 1 allows, 1-2 challenges, >= 2 blocks.  A subject that
was challenged and keeps scoring >= 1 for 3 more plays (which it can only
do by solving the challenge or ignoring it), or whose score grows by 0.5
past its score at the challenge, is blocked.  Blocks last ``block_s``.

Addresses are shared, so by default address-level evidence never blocks the
address itself: it lands on the requesting session, and trusted identities
(an established account with a clean score; without an account, an
established session) are not affected.  When an account became established
is kept in storage (``account_established_at`` on every event), so a restart
or days away do not make a listener a newcomer again; a fresh block of the
account ends it (:meth:`ScraperDetector.drain_trust_changes` reports both).  A scraper rotating
identities behind one address meets the address's evidence on its first
play of every new identity.

Ban evasion: a fresh block on a play or stream at an address keeps newcomers
there from audio until a day after the latest such block, so renewing
identities after a block gains nothing.  Refusals do not extend it (neither
the lockdown's own nor those of an identity already blocked), and it never
catches a listener with history: an account that was established (days old,
honest plays; ``account_established_at`` carries it from storage across
restarts and idle days) before the lockdown began, or a trusted identity.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from consentune.errors import InvalidInput

KINDS = frozenset({"page", "search", "play", "stream", "progress", "signup", "session", "challenge"})
PLAYER_EVENTS = frozenset({"tick", "seek", "pause", "resume"})
ACTIONS = ("allow", "challenge", "block")
HOUR_S = 3600.0
DAY_S = 86400.0
PROBATION_S = 4 * DAY_S  # an account established this recently is still pooled and budgeted as a newcomer
PROBATION_AGE_S = 7 * DAY_S  # ... if it was younger than this when it became established


def on_probation(*, created_at: float | None, established_at: float | None, now: float,
                 probation_s: float = PROBATION_S) -> bool:  # fmt: skip
    """An account that earned its standing less than ``probation_s`` ago while less than a week old: a sleeper
    that played a few honest tracks and waited out the minimum age.  Accounts that were older when they first
    played honestly (listeners from before the shield kept history, returning users) are not on probation."""
    if established_at is None or now - established_at >= probation_s:
        return False
    return created_at is None or established_at - created_at < PROBATION_AGE_S


NO_SESSION = frozenset({"", "-"})

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "faster_than_realtime": 1.0,
    "no_progress": 1.0,
    "impossible_progress": 1.0,
    "catalogue_breadth": 0.7,
    "catalogue_walk": 1.0,
    "play_rate": 0.7,
    "daily_volume": 1.0,
    "around_the_clock": 0.5,
    "user_agent_changes": 1.0,
    "newcomer_breadth": 1.0,
}


@dataclass(frozen=True)
class AccessEvent:
    """One listener request.  Times are float seconds on the caller's clock.

    ``stream``: ``nbytes`` served for ``track_id``; ``track_bytes`` (the
    file's size) and ``duration_s`` turn bytes into audio seconds; without
    them the play's real-time cap bounds the estimate.  ``progress``:
    ``position_s`` is the player's reported position in the track and
    ``player_event`` what happened (``tick`` while playing, ``seek``,
    ``pause``, ``resume``).  ``play``: ``catalog_index`` is the track's
    position in the public catalogue, ``artist_id`` its artist.
    ``account_established_at``: when storage last saw the account become
    established (its listening history), if ever.
    """

    at: float
    kind: str
    session_id: str
    address: str
    user_agent: str
    account_id: str | None = None
    track_id: str | None = None
    catalog_index: int | None = None
    nbytes: int = 0
    position_s: float | None = None
    duration_s: float | None = None
    account_created_at: float | None = None
    track_bytes: int | None = None
    player_event: str = "tick"
    artist_id: str | None = None
    account_established_at: float | None = None
    account_verified: bool = True  # False: sign-up verification not passed (shield.verify); never established


@dataclass(frozen=True)
class Signal:
    """One piece of evidence: ``value`` against ``threshold``, explained with its numbers."""

    name: str
    subject: str
    value: float
    threshold: float
    explanation: str


@dataclass(frozen=True)
class Verdict:
    """``action`` is allow, challenge or block; ``subject`` is session:<id>, account:<id> or address:<ip>."""

    action: str
    subject: str
    score: float
    signals: tuple[Signal, ...]


@dataclass(frozen=True)
class DetectorConfig:
    """Every threshold and window; times in seconds.  Defaults are argued in docs/shield-detection.md."""

    challenge_score: float = 1.0
    block_score: float = 2.0
    escalate_after_plays: int = 3
    escalation_margin: float = 0.5
    block_s: float = DAY_S
    stream_lead_s: float = 30.0
    realtime_tau_s: float = 600.0
    max_realtime_ratio: float = 1.5
    progress_grace_s: float = 45.0
    progress_min_audio_s: float = 60.0
    progress_slack_s: float = 10.0
    evidence_tau_s: float = 6 * HOUR_S
    expect_progress: bool = True
    no_progress_plays: float = 3.0
    impossible_progress_reports: float = 2.0
    breadth_tau_s: float = 12 * HOUR_S
    breadth_min_tracks: float = 40.0
    breadth_max_repeat_fraction: float = 0.05
    recent_tracks: int = 512
    walk_run: int = 20
    walk_max_step: int = 3
    walk_min_artists: int = 3
    play_rate_tau_s: float = 600.0
    max_plays_per_hour: float = 90.0
    daily_audio_ceiling_s: float = 14 * HOUR_S
    active_hours_ceiling: int = 20
    max_user_agents: int = 3
    signup_burst: int = 5
    signup_burst_window_s: float = 600.0
    burst_memory_s: float = DAY_S
    young_account_s: float = 3 * DAY_S
    young_accounts_at_address: float = 5.0
    established_plays: int = 3
    trusted_account_s: float = 3 * DAY_S
    probation_s: float = PROBATION_S
    newcomer_min_tracks: float = 40.0
    newcomer_tau_s: float = DAY_S
    newcomer_max_repeat_fraction: float = 0.05
    newcomer_vouch_accounts: float = 5.0
    prefix_newcomer_factor: float = 2.0
    lockdown_s: float = DAY_S
    reoffender_memory_s: float = 7 * DAY_S  # after a lockdown ends, its scope is a repeat offender this long
    reoffender_factor: float = 0.5  # ... and its pooled-novelty threshold is this fraction of the usual
    block_addresses: bool = False
    idle_forget_s: float = 2 * DAY_S
    max_subjects: int = 200_000  # ~2.5 KB each at most: ~500 MB worst case
    max_plays_per_session: int = 16
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def __post_init__(self) -> None:
        if not 0 < self.challenge_score < self.block_score:
            raise InvalidInput(
                f"need 0 < challenge_score ({self.challenge_score}) < block_score ({self.block_score})",
                hint="e.g. challenge_score=1.0, block_score=2.0",
            )
        unknown = set(self.weights) - set(DEFAULT_WEIGHTS)
        if unknown:
            raise InvalidInput(f"unknown signal weights {sorted(unknown)}", hint=f"known: {sorted(DEFAULT_WEIGHTS)}")


class _Decay:
    """An exponentially decaying sum: each unit added counts e^(-age/tau)."""

    __slots__ = ("t", "v")

    def __init__(self) -> None:
        self.v = 0.0
        self.t = 0.0

    def get(self, now: float, tau: float) -> float:
        if now > self.t and self.v:
            return self.v * math.exp((self.t - now) / tau)
        return self.v

    def add(self, now: float, x: float, tau: float) -> None:
        self.v = self.get(now, tau) + x
        self.t = max(self.t, now)


class _Hours:
    """The last 24 hourly buckets of (audio seconds, plays started)."""

    __slots__ = ("audio", "hour", "plays")

    def __init__(self) -> None:
        self.hour = [-1] * 24
        self.audio = [0.0] * 24
        self.plays = [0] * 24

    def _slot(self, now: float) -> int:
        hour = int(now // HOUR_S)
        slot = hour % 24
        if self.hour[slot] != hour:
            self.hour[slot], self.audio[slot], self.plays[slot] = hour, 0.0, 0
        return slot

    def add(self, now: float, *, audio_s: float = 0.0, plays: int = 0) -> None:
        slot = self._slot(now)
        self.audio[slot] += audio_s
        self.plays[slot] += plays

    def totals(self, now: float) -> tuple[float, int]:
        """(audio seconds, hours with a play) over the last 24 hours."""
        oldest = int(now // HOUR_S) - 23
        live = [i for i in range(24) if self.hour[i] >= oldest]
        return sum(self.audio[i] for i in live), sum(1 for i in live if self.plays[i])


class _Play:
    __slots__ = ("anchor_at", "anchor_s", "consumed_s", "duration_s", "flagged", "last_at", "progress", "start",
                 "streamed_bytes", "streams")  # fmt: skip

    def __init__(self, start: float, duration_s: float | None) -> None:
        self.start = self.last_at = self.anchor_at = start
        self.anchor_s = 0.0  # the current segment began at position anchor_s, at time anchor_at (seek, resume)
        self.duration_s = duration_s
        self.consumed_s = 0.0
        self.streamed_bytes = 0
        self.streams = 0
        self.progress = 0
        self.flagged = False


class _Subject:
    __slots__ = (
        "accounts",
        "amp_reason",
        "block_signals",
        "blocked_until",
        "burst_at",
        "challenge_score",
        "challenged_at",
        "crawler",
        "current",
        "established_at",
        "first_seen",
        "hours",
        "impossible",
        "key",
        "last_seen",
        "lockdown_reason",
        "lockdown_since",
        "lockdown_sources",
        "lockdown_until",
        "new_tracks",
        "no_progress",
        "plays",
        "plays_since_challenge",
        "progress_plays",
        "realtime",
        "recent",
        "repeats",
        "sessions",
        "signups",
        "user_agents",
        "vouchers",
        "walk_artist",
        "walk_artists",
        "walk_dir",
        "walk_last",
        "walk_run",
        "young_accounts",
    )

    def __init__(self, key: str, now: float) -> None:
        self.key = key
        self.first_seen = self.last_seen = now
        self.plays, self.new_tracks, self.repeats = _Decay(), _Decay(), _Decay()
        self.realtime, self.no_progress, self.impossible = _Decay(), _Decay(), _Decay()
        self.young_accounts = _Decay()
        self.recent: OrderedDict[str, None] = OrderedDict()
        self.hours = _Hours()
        self.walk_last: int | None = None
        self.walk_dir = 0
        self.walk_run = 0
        self.walk_artist: str | None = None
        self.walk_artists = 0
        self.crawler: str | None = None
        self.user_agents: list[str] = []
        self.sessions: OrderedDict[str, _Play] = OrderedDict()  # plays, for sessions; keyed by track
        self.current: _Play | None = None  # the latest play, for sessions
        self.accounts: OrderedDict[str, None] = OrderedDict()  # accounts seen, for addresses
        self.signups: list[float] = []
        self.burst_at = -math.inf
        self.progress_plays = 0
        self.established_at: float | None = None  # accounts: when it first counted as established
        self.amp_reason = ""
        self.challenged_at: float | None = None
        self.challenge_score = 0.0
        self.plays_since_challenge = 0
        self.blocked_until = -math.inf
        self.block_signals: tuple[Signal, ...] = ()
        self.lockdown_until = -math.inf  # addresses: no audio for newcomers until then (ban evasion)
        self.lockdown_since = -math.inf  # addresses: when the current lockdown began
        self.lockdown_reason = ""
        self.lockdown_sources: set[str] = set()  # addresses: the blocked identities that caused the lockdown
        self.vouchers = 0  # addresses: established accounts seen here


class ScraperDetector:
    """Streaming detector; thread-safe (one lock: each event costs tens of microseconds)."""

    def __init__(self, config: DetectorConfig | None = None, *, crawler_tokens: Sequence[str] = ()) -> None:
        self.config = config or DetectorConfig()
        self._weights = {**DEFAULT_WEIGHTS, **self.config.weights}
        tokens = sorted({t.strip() for t in crawler_tokens if t.strip()}, key=len, reverse=True)
        alternation = "|".join(re.escape(t) for t in tokens)
        self._crawler_re = re.compile(rf"(?<![a-z0-9])(?:{alternation})(?![a-z0-9])", re.I) if tokens else None
        self._crawler_cache: OrderedDict[str, str | None] = OrderedDict()
        self._subjects: OrderedDict[str, _Subject] = OrderedDict()
        self._counts = {"events": 0, "allow": 0, "challenge": 0, "block": 0, "forgotten": 0}
        self._trust_changes: list[tuple[str, float | None]] = []
        self._lock = threading.Lock()

    # -- public --------------------------------------------------------------
    def observe(self, event: AccessEvent) -> Verdict:
        """Update state with ``event`` and return the strongest verdict among its subjects."""
        with self._lock:
            return self._observe(event, self._subjects)

    def _observe(self, event: AccessEvent, table: OrderedDict[str, _Subject]) -> Verdict:
        """One event against ``table``: every subject it reads or changes is one of :func:`subject_keys`."""
        now = event.at
        self._counts["events"] += 1
        self._expire(now, table)
        session = None if event.session_id in NO_SESSION else self._subject(f"session:{event.session_id}", now, table)
        account = self._subject(f"account:{event.account_id}", now, table) if event.account_id else None
        address = self._subject(f"address:{event.address}", now, table)
        media = event.kind in ("play", "stream")
        prefix = self._subject(f"prefix:{network_prefix(event.address)}", now, table) if media else None
        if account is not None and event.account_created_at is not None:
            account.first_seen = min(account.first_seen, event.account_created_at)
        if account is not None and event.account_established_at is not None:
            stored, known = event.account_established_at, account.established_at
            account.established_at = stored if known is None else min(known, stored)
        if account is not None and not event.account_verified:  # an unverified account stays a newcomer
            account.first_seen, account.established_at = now, None
        self._update(event, session, account, address, prefix)
        verdict = self._decide(event, session, account, address, prefix)
        self._counts[verdict.action] += 1
        return verdict

    def drain_trust_changes(self) -> list[tuple[str, float | None]]:
        """(account id, established at or None when lost) since the last call: for storage to remember, so
        a restart or idle days do not reset a listener's history."""
        with self._lock:
            changes, self._trust_changes = self._trust_changes, []
        return changes

    def forget_before(self, t: float) -> int:
        """Forget subjects idle since before ``t`` (unless still blocked); returns how many."""
        with self._lock:
            return self._forget_before(t)

    def _forget_before(self, t: float) -> int:
        stale = [k for k, s in self._subjects.items() if s.last_seen < t and s.blocked_until <= t]
        for key in stale:
            del self._subjects[key]
        self._counts["forgotten"] += len(stale)
        return len(stale)

    def stats(self) -> dict[str, int]:
        """Event and verdict counts, subjects held (by kind) and how many were forgotten."""
        kinds = {"session": 0, "account": 0, "address": 0, "prefix": 0}
        with self._lock:
            keys, counts = list(self._subjects), dict(self._counts)
        for key in keys:
            kinds[key.split(":", 1)[0]] += 1
        plural = {"session": "sessions", "account": "accounts", "address": "addresses", "prefix": "prefixes"}
        return {**counts, "subjects": len(keys), **{plural[k]: v for k, v in kinds.items()}}

    # -- state updates ---------------------------------------------------------
    def _subject(self, key: str, now: float, table: OrderedDict[str, _Subject]) -> _Subject:
        subject = table.get(key)
        if subject is None:
            subject = table[key] = _Subject(key, now)
            if len(table) > self.config.max_subjects:
                table.popitem(last=False)
                self._counts["forgotten"] += 1
        else:
            table.move_to_end(key)
        subject.last_seen = max(subject.last_seen, now)
        return subject

    def _expire(self, now: float, table: OrderedDict[str, _Subject]) -> None:
        """Drop subjects idle for ``idle_forget_s``; the dict is ordered by last use, so this is amortized O(1)."""
        horizon = now - self.config.idle_forget_s
        while table:
            key, oldest = next(iter(table.items()))
            if oldest.last_seen >= horizon or oldest.blocked_until > now:
                return
            del table[key]
            self._counts["forgotten"] += 1

    def _update(
        self,
        e: AccessEvent,
        session: _Subject | None,
        account: _Subject | None,
        address: _Subject,
        prefix: _Subject | None,
    ) -> None:
        people = [s for s in (session, account) if s is not None]
        pools = (address,) if prefix is None else (address, prefix)
        if e.kind == "signup":
            self._signup(address, e.at)
        if e.kind in ("play", "stream") and self._crawler(e.user_agent):
            for s in people:
                s.crawler = e.user_agent
        if session is not None:
            self._user_agent(session, e.user_agent)
        if account is not None:
            for pool in pools:
                self._account_at_address(pool, account, e.at)
        if e.kind == "play" and e.track_id is not None:
            self._play(e, session, people, address, pools)
        elif e.kind == "stream" and e.track_id is not None and session is not None:
            self._stream(e, session, people, address, newcomers=pools if self._newcomer(account, e.at) else ())
        elif e.kind == "progress" and e.track_id is not None and session is not None:
            self._progress(e, session, people, address)

    def _crawler(self, user_agent: str) -> str | None:
        if self._crawler_re is None:
            return None
        if user_agent in self._crawler_cache:
            return self._crawler_cache[user_agent]
        match = self._crawler_re.search(user_agent)
        found = match.group(0) if match else None
        self._crawler_cache[user_agent] = found
        if len(self._crawler_cache) > 10_000:
            self._crawler_cache.popitem(last=False)
        return found

    def _user_agent(self, session: _Subject, user_agent: str) -> None:
        if user_agent not in session.user_agents and len(session.user_agents) < 2 * self.config.max_user_agents:
            session.user_agents.append(user_agent)

    def _signup(self, address: _Subject, now: float) -> None:
        c = self.config
        recent = [t for t in address.signups if t >= now - c.signup_burst_window_s]
        address.signups = [*recent[-(c.signup_burst - 1) :], now] if c.signup_burst > 1 else [now]
        if len(address.signups) >= c.signup_burst:
            address.burst_at = now

    def _account_at_address(self, address: _Subject, account: _Subject, now: float) -> None:
        c = self.config
        if account.key in address.accounts:
            address.accounts.move_to_end(account.key)
            return
        address.accounts[account.key] = None
        if len(address.accounts) > 256:
            address.accounts.popitem(last=False)
        if now - account.first_seen < c.young_account_s:
            address.young_accounts.add(now, 1.0, DAY_S)
        if not self._newcomer(account, now):
            address.vouchers += 1
        if now - address.burst_at < c.burst_memory_s and not account.amp_reason:
            account.amp_reason = f"first seen at {address.key.split(':', 1)[1]} during a burst of sign-ups"

    def _play(
        self,
        e: AccessEvent,
        session: _Subject | None,
        people: list[_Subject],
        address: _Subject,
        pools: tuple[_Subject, ...],
    ) -> None:
        c = self.config
        track = e.track_id or ""
        for s in people:
            s.plays.add(e.at, 1.0, c.play_rate_tau_s)
            s.hours.add(e.at, plays=1)
            if track in s.recent:
                s.repeats.add(e.at, 1.0, c.breadth_tau_s)
                s.recent.move_to_end(track)
            else:
                s.new_tracks.add(e.at, 1.0, c.breadth_tau_s)
                s.recent[track] = None
                if len(s.recent) > c.recent_tracks:
                    s.recent.popitem(last=False)
        if e.catalog_index is not None:
            for s in (*people, address):
                self._walk(s, e.catalog_index, e.artist_id)
        for s in (*people, *pools):
            if s.challenged_at is not None:
                s.plays_since_challenge += 1
        if session is not None:
            if session.current is not None:
                self._close(session.current, e.at, [*people, address])
            session.sessions.pop(track, None)
            session.sessions[track] = session.current = _Play(e.at, e.duration_s)
            if len(session.sessions) > c.max_plays_per_session:
                session.sessions.popitem(last=False)

    def _walk(self, s: _Subject, index: int, artist: str | None) -> None:
        """Runs of small steps in one direction, and how many artists each run went through (a track
        without a known artist counts as an artist of its own)."""
        last = s.walk_last
        s.walk_last = index
        step = 0 if last is None else index - last
        if last is not None and step == 0:
            return
        direction = 1 if step > 0 else -1
        new_artist = artist is None or artist != s.walk_artist
        s.walk_artist = artist
        if last is not None and abs(step) <= self.config.walk_max_step and (s.walk_dir in (0, direction)):
            s.walk_run += 1
            s.walk_dir = direction
            s.walk_artists += new_artist
        else:
            s.walk_run, s.walk_dir, s.walk_artists = 1, 0, 1

    def _newcomer(self, account: _Subject | None, now: float) -> bool:
        """Anonymous, an account without days of history and a few honest plays, or one established less than
        ``probation_s`` ago while young (:func:`on_probation`): it still feeds its address's pooled novelty,
        vouches for nobody and is not shielded from its address's evidence (cheap; no score)."""
        if account is None:
            return True
        established = self._established_at(account, now)
        return established is None or on_probation(created_at=account.first_seen, established_at=established,
                                                   now=now, probation_s=self.config.probation_s)  # fmt: skip

    def _established_at(self, account: _Subject, now: float) -> float | None:
        """When the account became established (days old and a few honest plays), remembered once reached."""
        c = self.config
        if account.established_at is None and (
            now - account.first_seen >= c.trusted_account_s and account.progress_plays >= c.established_plays
        ):
            account.established_at = now
            self._trust_changes.append((account.key.split(":", 1)[1], now))
        return account.established_at

    def _lose_trust(self, account: _Subject) -> None:
        """A fresh block ends the account's standing: its history starts over."""
        if account.established_at is not None:
            self._trust_changes.append((account.key.split(":", 1)[1], None))
        account.established_at, account.progress_plays = None, 0

    def _stream(
        self,
        e: AccessEvent,
        session: _Subject,
        people: list[_Subject],
        address: _Subject,
        *,
        newcomers: tuple[_Subject, ...],
    ) -> None:
        c = self.config
        play = session.sessions.get(e.track_id or "")
        if play is None:  # the play was forgotten or started elsewhere: count from now
            play = session.sessions[e.track_id or ""] = _Play(e.at, e.duration_s)
        play.duration_s = play.duration_s or e.duration_s
        play.streams += 1
        if play.streams == 1:
            for pool in newcomers:
                self._newcomer_track(pool, e.track_id or "", e.at)
        play.last_at = max(play.last_at, e.at)
        play.streamed_bytes += max(0, e.nbytes)
        consumed = self._consumed_s(play, e)
        delta = max(0.0, consumed - play.consumed_s)
        beyond = max(0.0, consumed - c.stream_lead_s) - max(0.0, play.consumed_s - c.stream_lead_s)
        play.consumed_s = max(play.consumed_s, consumed)
        for s in people:
            s.realtime.add(e.at, beyond, c.realtime_tau_s)
            s.hours.add(e.at, audio_s=delta)
        if (
            not play.flagged
            and play.progress == 0
            and play.consumed_s >= c.progress_min_audio_s
            and e.at - play.start >= c.progress_grace_s
        ):
            play.flagged = True
            for s in (*people, address):
                s.no_progress.add(e.at, 1.0, c.evidence_tau_s)

    def _newcomer_track(self, address: _Subject, track: str, now: float) -> None:
        """Pooled novelty of every newcomer at an address or prefix (its ``recent``/``new_tracks``/``repeats``)."""
        c = self.config
        if track in address.recent:
            address.repeats.add(now, 1.0, c.newcomer_tau_s)
            address.recent.move_to_end(track)
            return
        address.new_tracks.add(now, 1.0, c.newcomer_tau_s)
        address.recent[track] = None
        if len(address.recent) > c.recent_tracks:
            address.recent.popitem(last=False)

    def _consumed_s(self, play: _Play, e: AccessEvent) -> float:
        """Audio seconds of the track fetched so far: bytes when sizes are known, bounded by the real-time cap."""
        duration = play.duration_s if play.duration_s and play.duration_s > 0 else math.inf
        capped = min(duration, max(0.0, e.at - play.start) + self.config.stream_lead_s)
        if e.track_bytes and e.track_bytes > 0 and math.isfinite(duration):
            return min(capped, play.streamed_bytes / e.track_bytes * duration)
        return capped

    def _close(self, play: _Play, now: float, subjects: Iterable[_Subject]) -> None:
        """The next play started: one that kept streaming past the grace time and never reported counts."""
        c = self.config
        if play.flagged or play.progress or not play.streams or play.last_at - play.start < c.progress_grace_s:
            return
        if play.consumed_s >= c.stream_lead_s:
            play.flagged = True
            for s in subjects:
                s.no_progress.add(now, 1.0, c.evidence_tau_s)

    def _progress(self, e: AccessEvent, session: _Subject, people: list[_Subject], address: _Subject) -> None:
        c = self.config
        play = session.sessions.get(e.track_id or "")
        if play is None or e.position_s is None:
            return
        play.progress += 1
        play.last_at = max(play.last_at, e.at)
        position = e.position_s
        past_end = play.duration_s is not None and position > play.duration_s + c.progress_slack_s
        if e.player_event in ("seek", "resume"):  # a new segment starts here: anywhere inside the track is fine
            reachable, unfetched = math.inf, False
        else:
            reachable = play.anchor_s + (e.at - play.anchor_at) + c.stream_lead_s + c.progress_slack_s
            unfetched = play.streams == 0 and position > play.anchor_s + c.progress_slack_s
        odd = position > reachable or past_end or unfetched
        if (odd or e.player_event != "tick") and not past_end:  # one unannounced jump is one odd report
            play.anchor_at, play.anchor_s = e.at, position
        if odd:
            for s in (*people, address):
                s.impossible.add(e.at, 1.0, c.evidence_tau_s)
        elif play.progress == 1:
            for s in people:
                s.progress_plays += 1
                if s.key.startswith("account:"):
                    self._established_at(s, e.at)  # noted now, so storage keeps it

    # -- scoring -----------------------------------------------------------------
    def _decide(
        self,
        e: AccessEvent,
        session: _Subject | None,
        account: _Subject | None,
        address: _Subject,
        prefix: _Subject | None,
    ) -> Verdict:
        standing = {s.key for s in (session, account, address, prefix) if s is not None and e.at < s.blocked_until}
        verdicts = [self._judge(s, e) for s in (session, account) if s is not None]
        for pool in (address,) if prefix is None else (address, prefix):
            by_pool = self._judge(pool, e)
            if by_pool.action != "allow":
                verdicts.append(self._attribute(by_pool, session, account, e))
        for pool in (address,) if prefix is None else (address, prefix):
            lockdown = self._lockdown(e, session, account, pool)
            if lockdown is not None:
                verdicts.append(lockdown)
        if not verdicts:
            return Verdict("allow", address.key, 0.0, ())
        verdict = max(verdicts, key=lambda v: (ACTIONS.index(v.action), v.score))
        fresh = verdict.subject not in standing and all(sig.name != "ban_evasion" for sig in verdict.signals)
        if verdict.action == "block" and fresh and account is not None:
            self._lose_trust(account)
        if verdict.action == "block" and e.kind in ("play", "stream") and fresh:
            self._lock_down(address, verdict, e.at)
            if prefix is not None and any(sig.subject == prefix.key for sig in verdict.signals):
                self._lock_down(prefix, verdict, e.at)  # the prefix's own evidence locks the prefix
        return verdict

    def _established(self, s: _Subject, e: AccessEvent) -> bool:
        """Several plays with consistent progress and a clean score of its own."""
        c = self.config
        return s.progress_plays >= c.established_plays and self._score(s, e)[0] < c.challenge_score

    def _trusted(self, session: _Subject | None, account: _Subject | None, e: AccessEvent) -> bool:
        """Shielded from address evidence: an account with days of history, honest plays, past its probation
        and a clean score; without an account, an established session.  A fresh account is never trusted,
        however it plays, and neither is a sleeper that just earned its standing."""
        if account is not None:
            clean = self._score(account, e)[0] < self.config.challenge_score
            return not self._newcomer(account, e.at) and clean
        return session is not None and self._established(session, e)

    def _lock_down(self, address: _Subject, verdict: Verdict, now: float) -> None:
        """A fresh block at an address (or on a prefix's evidence) keeps newcomers there from audio for
        ``lockdown_s`` after the latest one.  The reason is for the operator only."""
        if now >= address.lockdown_until:
            address.lockdown_since = now
        address.lockdown_until = max(address.lockdown_until, now + self.config.lockdown_s)
        name = verdict.signals[0].name if verdict.signals else "score"
        address.lockdown_reason = f"{verdict.subject} was blocked at t={now:.0f} ({name})"
        address.lockdown_sources.add(verdict.subject)

    def forgive(self, subject: str) -> None:
        """An operator lifted the block on ``subject``: forget what the detector held against it, and end
        lockdowns only its block caused (with the refusals of newcomers that extended them)."""
        with self._lock:
            self._subjects.pop(subject, None)
            for other in self._subjects.values():
                _release_lockdown(other, subject)

    def _lockdown(
        self, e: AccessEvent, session: _Subject | None, account: _Subject | None, address: _Subject
    ) -> Verdict | None:
        """Ban evasion: a new identity asking for audio where an identity was just blocked gets none."""
        if e.kind not in ("play", "stream") or e.at >= address.lockdown_until or session is None:
            return None
        if self._trusted(session, account, e) or self._history_before(account, address.lockdown_since, e.at):
            return None
        hours = (address.lockdown_until - e.at) / HOUR_S
        text = (
            f"{address.lockdown_reason or 'an identity here was blocked'}; new identities at "
            f"{address.key.split(':', 1)[1]} get no audio for {hours:.1f} h more (accounts with a history are "
            "unaffected)"
        )
        signal = Signal("ban_evasion", address.key, 1.0, 1.0, text)
        return Verdict("block", session.key, self.config.block_score, (signal,))  # audio only, while it lasts

    def _history_before(self, account: _Subject | None, since: float, now: float) -> bool:
        """A listener with history: an account established before the lockdown began."""
        if account is None:
            return False
        established = self._established_at(account, now)
        return established is not None and established < since

    def _attribute(
        self, verdict: Verdict, session: _Subject | None, account: _Subject | None, e: AccessEvent
    ) -> Verdict:
        """Address evidence lands on the requesting session unless addresses may be blocked."""
        if self.config.block_addresses:
            return verdict
        if session is None or e.kind not in ("play", "stream"):
            return Verdict("allow", verdict.subject, verdict.score, verdict.signals)
        if self._trusted(session, account, e):
            return Verdict("allow", session.key, 0.0, ())
        if verdict.action == "block":
            session.blocked_until = e.at + self.config.block_s
            session.block_signals = verdict.signals
        return Verdict(verdict.action, session.key, verdict.score, verdict.signals)

    def _judge(self, s: _Subject, e: AccessEvent) -> Verdict:
        c = self.config
        if e.at < s.blocked_until:
            return Verdict("block", s.key, c.block_score, s.block_signals)
        score, signals = self._score(s, e)
        action = "allow"
        if score >= c.block_score:
            action = "block"
        elif score >= c.challenge_score:
            action = "challenge"
            if s.challenged_at is None:
                s.challenged_at, s.challenge_score, s.plays_since_challenge = e.at, score, 0
            elif s.plays_since_challenge >= c.escalate_after_plays or score >= s.challenge_score + c.escalation_margin:
                action = "block"
                signals = (*signals, self._escalation(s, score))
        elif score < c.challenge_score / 2:
            s.challenged_at = None
        if action == "block" and (self.config.block_addresses or not s.key.startswith(("address:", "prefix:"))):
            s.blocked_until = e.at + c.block_s
            s.block_signals = signals
        return Verdict(action, s.key, score, signals)

    def _escalation(self, s: _Subject, score: float) -> Signal:
        return Signal(
            "escalation",
            s.key,
            float(s.plays_since_challenge),
            float(self.config.escalate_after_plays),
            f"challenged at t={s.challenged_at:.0f} s with score {s.challenge_score:.2f} and still scoring high "
            f"({score:.2f}) {s.plays_since_challenge} plays later",
        )

    def _score(self, s: _Subject, e: AccessEvent) -> tuple[float, tuple[Signal, ...]]:
        if s.crawler is not None and e.kind in ("play", "stream"):
            token = self._crawler(s.crawler) or "?"
            text = f"user agent {s.crawler[:120]!r} names the AI crawler {token!r}; crawlers get no audio"
            return self.config.block_score, (Signal("ai_crawler", s.key, 1.0, 1.0, text),)
        signals = [sig for sig in self._signals(s, e.at) if sig is not None]
        base = sum(self._weights[sig.name] * min(2.0, sig.value / sig.threshold) for sig in signals)
        if base <= 0:
            return 0.0, ()
        amp, reason = self._amplifier(s, e.at)
        if amp > 1:
            signals.append(Signal("infrastructure", s.key, amp, 1.0, f"score ×{amp:.2f}: {reason}"))
        return base * amp, tuple(signals)

    def _signals(self, s: _Subject, now: float) -> Iterable[Signal | None]:
        kind = s.key.split(":", 1)[0]
        if kind == "prefix":
            yield self._newcomer_breadth(s, now)
            return
        yield self._no_progress(s, now)
        yield self._impossible(s, now)
        yield self._walk_signal(s)
        if kind == "address":
            yield self._newcomer_breadth(s, now)
            return
        yield self._realtime(s, now)
        yield self._breadth(s, now)
        yield self._play_rate(s, now)
        yield from self._daily(s, now)
        if kind == "session":
            yield self._agents(s)

    def _no_progress(self, s: _Subject, now: float) -> Signal | None:
        c = self.config
        n = s.no_progress.get(now, c.evidence_tau_s)
        if not c.expect_progress or n < c.no_progress_plays - 1e-9:
            return None
        window = c.evidence_tau_s / HOUR_S
        text = f"{n:.1f} plays (decaying over ~{window:.0f} h) fetched audio but never reported playback"
        return Signal("no_progress", s.key, n, c.no_progress_plays, text)

    def _impossible(self, s: _Subject, now: float) -> Signal | None:
        c = self.config
        n = s.impossible.get(now, c.evidence_tau_s)
        if n < c.impossible_progress_reports - 1e-9:
            return None
        text = (
            f"{n:.1f} progress reports claimed positions no player could have reached "
            f"(past the wall time since play start + {c.stream_lead_s:.0f} s buffer, past the end, or before any audio)"
        )
        return Signal("impossible_progress", s.key, n, c.impossible_progress_reports, text)

    def _walk_signal(self, s: _Subject) -> Signal | None:
        c = self.config
        if s.walk_run < c.walk_run or s.walk_artists < c.walk_min_artists:
            return None
        text = f"{s.walk_run} consecutive plays stepped through the catalogue by at most {c.walk_max_step} positions"
        return Signal("catalogue_walk", s.key, float(s.walk_run), float(c.walk_run), text)

    def _realtime(self, s: _Subject, now: float) -> Signal | None:
        c = self.config
        ratio = s.realtime.get(now, c.realtime_tau_s) / c.realtime_tau_s
        if ratio < c.max_realtime_ratio:
            return None
        text = (
            f"fetched audio at {ratio:.2f}× real time over the last ~{c.realtime_tau_s / 60:.0f} min "
            f"(beyond each play's {c.stream_lead_s:.0f} s buffer); one player stays at or below 1×"
        )
        return Signal("faster_than_realtime", s.key, ratio, c.max_realtime_ratio, text)

    def _breadth(self, s: _Subject, now: float) -> Signal | None:
        c = self.config
        new = s.new_tracks.get(now, c.breadth_tau_s)
        repeats = s.repeats.get(now, c.breadth_tau_s)
        fraction = repeats / (new + repeats) if new + repeats else 0.0
        if new < c.breadth_min_tracks or fraction >= c.breadth_max_repeat_fraction:
            return None
        text = (
            f"started {new:.0f} distinct tracks (decaying over ~{c.breadth_tau_s / HOUR_S:.0f} h) with only "
            f"{fraction:.1%} repeats; listeners return to favourites, scrapers walk the catalogue"
        )
        return Signal("catalogue_breadth", s.key, new, c.breadth_min_tracks, text)

    def _newcomer_breadth(self, s: _Subject, now: float) -> Signal | None:
        """Newcomers at one address, pooled: many distinct tracks, hardly a repeat between them.

        A crowd of honest new listeners behind one address overlaps on popular tracks and returns to
        favourites; identities rotated by one scraper never do.  Each established account seen at the
        address (a shared NAT is vouched for by its regulars) raises the threshold; a lockdown there in the
        last ``reoffender_memory_s`` (a farm that comes back each day) lowers it.
        """
        c = self.config
        new = s.new_tracks.get(now, c.newcomer_tau_s)
        repeats = s.repeats.get(now, c.newcomer_tau_s)
        fraction = repeats / (new + repeats) if new + repeats else 0.0
        threshold = c.newcomer_min_tracks * (1.0 + s.vouchers / c.newcomer_vouch_accounts)
        if s.key.startswith("prefix:"):
            threshold *= c.prefix_newcomer_factor
        if now - s.lockdown_until < c.reoffender_memory_s:  # a farm back after its lockdown: half the burst
            threshold *= c.reoffender_factor
        if new < threshold or fraction >= c.newcomer_max_repeat_fraction:
            return None
        where = "this address" if s.key.startswith("address:") else f"{s.key.split(':', 1)[1]}"
        text = (
            f"new identities at {where} streamed {new:.0f} distinct tracks (decaying over "
            f"~{c.newcomer_tau_s / HOUR_S:.0f} h) with only {fraction:.1%} repeats between them; crowds of new "
            f"listeners share popular tracks and favourites"
        )
        return Signal("newcomer_breadth", s.key, new, threshold, text)

    def _play_rate(self, s: _Subject, now: float) -> Signal | None:
        c = self.config
        per_hour = s.plays.get(now, c.play_rate_tau_s) / c.play_rate_tau_s * HOUR_S
        if per_hour < c.max_plays_per_hour:
            return None
        text = f"starting {per_hour:.0f} plays per hour (over ~{c.play_rate_tau_s / 60:.0f} min)"
        return Signal("play_rate", s.key, per_hour, c.max_plays_per_hour, text)

    def _daily(self, s: _Subject, now: float) -> Iterable[Signal | None]:
        c = self.config
        audio_s, active_hours = s.hours.totals(now)
        if audio_s >= c.daily_audio_ceiling_s:
            ceiling = c.daily_audio_ceiling_s / HOUR_S
            text = f"fetched {audio_s / HOUR_S:.1f} h of audio in 24 h (human ceiling {ceiling:.0f} h)"
            yield Signal("daily_volume", s.key, audio_s, c.daily_audio_ceiling_s, text)
        if active_hours >= c.active_hours_ceiling:
            text = f"started plays in {active_hours} of the last 24 hours without a break to sleep"
            yield Signal("around_the_clock", s.key, float(active_hours), float(c.active_hours_ceiling), text)

    def _agents(self, s: _Subject) -> Signal | None:
        n = len(s.user_agents)
        if n < self.config.max_user_agents:
            return None
        text = f"{n} different user agents within one session; a browser keeps one"
        return Signal("user_agent_changes", s.key, float(n), float(self.config.max_user_agents), text)

    def _amplifier(self, s: _Subject, now: float) -> tuple[float, str]:
        c = self.config
        amp, reasons = 1.0, []
        if s.key.startswith("address:"):
            if now - s.burst_at < c.burst_memory_s:
                amp += 0.5
                reasons.append(f"{c.signup_burst}+ sign-ups within {c.signup_burst_window_s / 60:.0f} min here")
            young = s.young_accounts.get(now, DAY_S)
            if young >= c.young_accounts_at_address:
                amp += 0.25
                reasons.append(f"{young:.0f} young accounts behind this address")
        elif s.key.startswith("account:"):
            if now - s.first_seen < c.young_account_s:
                amp += 0.25
                reasons.append(f"account is {(now - s.first_seen) / HOUR_S:.1f} h old")
            if s.amp_reason:
                amp += 0.25
                reasons.append(s.amp_reason)
        return amp, "; ".join(reasons)


def _release_lockdown(pool: _Subject, source: str) -> None:
    """``source``'s block no longer holds ``pool`` (an address or prefix) locked down; the last one ends it."""
    if source in pool.lockdown_sources:
        pool.lockdown_sources.discard(source)
        if not pool.lockdown_sources:
            pool.lockdown_until, pool.lockdown_reason = -math.inf, ""


def subject_keys(event: AccessEvent) -> list[str]:
    """The subjects one event reads and changes (session, account, address, prefix): its whole state."""
    keys = [] if event.session_id in NO_SESSION else [f"session:{event.session_id}"]
    if event.account_id:
        keys.append(f"account:{event.account_id}")
    keys.append(f"address:{event.address}")
    if event.kind in ("play", "stream"):
        keys.append(f"prefix:{network_prefix(event.address)}")
    return keys


@functools.lru_cache(maxsize=65_536)
def network_prefix(address: str) -> str:
    """The block one operator usually holds: IPv4 /24, IPv6 /48 (an address or a /64 as the desk gives it)."""
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return address
    bits = 24 if network.version == 4 else 48
    return str(network.supernet(new_prefix=bits)) if network.prefixlen > bits else str(network)


__all__ = [
    "PROBATION_S",
    "AccessEvent",
    "DetectorConfig",
    "ScraperDetector",
    "Signal",
    "Verdict",
    "network_prefix",
    "on_probation",
    "subject_keys",
]
