"""One simulated client over HTTP, and what the benchmark records about every request.

The harness plays the trusted reverse proxy: each request carries the
simulated time (``X-Consentune-Sim-Time``) and an ``X-Forwarded-For`` with
the client's simulated public address appended as the last hop, after
whatever the client itself sent, exactly as a real proxy appends.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from consentune.bench.shieldsim.inprocess import transport_for
from consentune.shield.challenge import Challenge, solve

_TIMING_RE = re.compile(r"shield;dur=([0-9.]+)")
_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_REFERENCE_RE = re.compile(r"\(reference (\d+)\)")
AHEAD_MESSAGE = "ahead of real-time playback"


class BudgetExhausted(Exception):
    """A hard cap (requests per client, total requests or wall time) was reached."""


@dataclass
class Budget:
    """Hard caps shared by every client of one run."""

    max_total_requests: int
    max_client_requests: int
    deadline: float  # time.monotonic() value
    total_requests: int = 0
    exhausted: str = ""
    sizes: dict[str, int] = field(default_factory=dict)  # track id -> bytes served, checked on every 206

    def take(self, client_requests: int) -> None:
        if self.total_requests >= self.max_total_requests:
            self.exhausted = self.exhausted or f"total request cap {self.max_total_requests:,}"
            raise BudgetExhausted(self.exhausted)
        if time.monotonic() > self.deadline:
            self.exhausted = self.exhausted or "wall-time cap"
            raise BudgetExhausted(self.exhausted)
        if client_requests >= self.max_client_requests:
            raise BudgetExhausted(f"per-client request cap {self.max_client_requests:,}")
        self.total_requests += 1


class ByteRanges:
    """Distinct bytes received per track: a union of closed intervals, merged on insert."""

    def __init__(self) -> None:
        self._spans: dict[str, list[tuple[int, int]]] = {}

    def add(self, track_id: str, start: int, end: int) -> None:
        """Record bytes ``start..end`` (inclusive) of ``track_id``."""
        merged: list[tuple[int, int]] = []
        for a, b in self._spans.get(track_id, []):
            if b + 1 < start or a > end + 1:
                merged.append((a, b))
            else:
                start, end = min(a, start), max(b, end)
        merged.append((start, end))
        self._spans[track_id] = sorted(merged)

    def of(self, track_id: str) -> int:
        return sum(b - a + 1 for a, b in self._spans.get(track_id, []))

    def tracks(self) -> list[str]:
        return list(self._spans)

    def total(self) -> int:
        return sum(self.of(t) for t in self._spans)


class ScopeAudio:
    """Distinct bytes per (identity, day) and per (/24, day): what real newcomers got, measured in the run."""

    def __init__(self) -> None:
        self.identity_days: dict[tuple[str, int], ByteRanges] = {}
        self.prefix_days: dict[tuple[str, int], ByteRanges] = {}

    def add(self, *, identity: str, address: str, now: float, track_id: str, start: int, end: int) -> None:
        day = int(now // 86400)
        self.identity_days.setdefault((identity, day), ByteRanges()).add(track_id, start, end)
        self.prefix_days.setdefault((address.rsplit(".", 1)[0], day), ByteRanges()).add(track_id, start, end)


@dataclass
class GroupStats:
    """Everything recorded for one group of clients (a scraper strategy, or the listeners)."""

    name: str
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    challenges: int = 0
    solved: int = 0
    blocks: int = 0
    throttled_ahead: int = 0
    throttled_other: int = 0
    transport_errors: int = 0
    first_challenge_at: float | None = None
    first_block_at: float | None = None
    plays: int = 0
    sessions: int = 0
    accounts: int = 0
    capped: int = 0
    shield_ms: list[float] = field(default_factory=list)
    rtt_ms: list[float] = field(default_factory=list)
    ranges: ByteRanges = field(default_factory=ByteRanges)
    reasons: Counter[str] = field(default_factory=Counter)
    # identity cost: which identities and /24s received audio on which simulated day, newcomer-budget refusals
    identity_days: set[tuple[str, int]] = field(default_factory=set)
    prefix_days: set[tuple[str, int]] = field(default_factory=set)
    newcomer_limited: int = 0

    def note_audio(self, identity: str, address: str, now: float) -> None:
        day = int(now // 86400)
        self.identity_days.add((identity, day))
        self.prefix_days.add((address.rsplit(".", 1)[0], day))


@dataclass(frozen=True)
class Reply:
    status: int
    code: str
    data: Any
    body: bytes
    retry_after_s: float
    challenged: bool = False

    @property
    def blocked(self) -> bool:
        return self.status == 403 and self.code == "blocked"

    @property
    def ahead(self) -> bool:
        return self.status == 429 and AHEAD_MESSAGE in _message(self.data)


class SimClient:
    """One simulated client: one keep-alive connection, its address, its user agent, its session.

    ``user_agent`` may be a callable for clients that rotate it per request;
    ``forged_xff`` (a callable) is what a client writes into ``X-Forwarded-For``
    itself.  Clients that do not keep cookies send their session credential as ``X-Session-Token``.
    """

    def __init__(
        self,
        *,
        base_url: str,
        group: GroupStats,
        budget: Budget,
        address: str,
        user_agent: str | Callable[[], str],
        keep_cookies: bool = True,
        forged_xff: Callable[[], str] | None = None,
        scope_audio: ScopeAudio | None = None,
    ) -> None:
        # plain http on loopback: no TLS context (building one loads the CA bundle, ~0.1-0.5 s of CPU per client)
        self.http = httpx.Client(base_url=base_url, timeout=60.0, verify=False, transport=transport_for(base_url))
        self.scope_audio = scope_audio  # set for real newcomers: their audio per identity-day and /24-day
        self.group = group
        self.budget = budget
        self.address = address
        self.user_agent = user_agent
        self.keep_cookies = keep_cookies
        self.forged_xff = forged_xff
        self.session_id: str | None = None  # the public id
        self.session_token: str | None = None  # the credential
        self.account_token: str | None = None
        self.account_id: str | None = None
        self.requests = 0
        self._now = 0.0
        self.streams: dict[str, str] = {}  # stream url -> track id

    def close(self) -> None:
        self.http.close()

    # -- the listener API --------------------------------------------------------
    def sign_up(self, now: float) -> Reply:
        reply = self.call("POST", "/v1/listen/accounts", now=now)
        if reply.status == 201:
            self.account_token = str(reply.data["token"])
            self.account_id = str(reply.data["account_id"])
            self.group.accounts += 1
        return reply

    def forget_session(self) -> None:
        """Drop the session cookie and id (a scraper starting over as somebody new)."""
        self.http.cookies.clear()
        self.session_id = self.session_token = None

    def start_session(self, now: float, *, with_account: bool = True) -> Reply:
        self.forget_session()
        headers = {"Authorization": f"Bearer {self.account_token}"} if with_account and self.account_token else {}
        reply = self.call("POST", "/v1/listen/sessions", now=now, headers=headers)
        if reply.status == 201:
            self.session_id = str(reply.data["session_id"])
            self.session_token = str(reply.data["session_token"])
            self.group.sessions += 1
        return reply

    def play(self, track_id: str, now: float, *, resume: str | None = None) -> Reply:
        """Start a play; ``resume`` (the stream URL that expired during a pause) continues that play."""
        query = None if resume is None else {"resume": resume}
        reply = self.call("POST", f"/v1/listen/tracks/{track_id}/play", now=now, params=query)
        if reply.status == 200:
            self.streams[str(reply.data["stream_url"])] = track_id
            self.group.plays += 1
        return reply

    def fetch(self, url: str, now: float, *, start: int, end: int | None = None) -> tuple[Reply, int]:
        """GET a byte range of a stream URL; returns the reply and the next byte offset (or -1 at the end)."""
        wanted = f"bytes={start}-{'' if end is None else end}"
        reply = self.call("GET", url, now=now, headers={"Range": wanted})
        self._now = now
        if reply.status != 206:
            return reply, start
        self.group.note_audio(self.account_token or self.session_id or "-", self.address, now)
        return reply, self._received(url, reply)

    def progress(self, track_id: str, position_s: float, now: float, *, event: str = "tick") -> Reply:
        """Report the play position; ``event`` is tick, seek, pause or resume (a seek or resume starts a segment)."""
        body = {"track_id": track_id, "position_s": position_s, "event": event}
        return self.call("POST", "/v1/listen/progress", now=now, json=body)

    # -- transport ------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        now: float,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request (plus, when challenged, the proof of work and one retry, as a browser would)."""
        reply = self._send(method, path, now=now, params=params, json=json, headers=headers)
        if reply.status == 403 and reply.code == "challenge_required":
            self._challenged(reply, now)
            raw = reply.data["error"]["challenge"]
            challenge = Challenge(str(raw["token"]), str(raw["salt"]), int(raw["difficulty_bits"]),
                                  float(raw["expires_at"]))  # fmt: skip
            answer = {"token": challenge.token, "nonce": solve(challenge)}
            solved = self._send("POST", "/v1/listen/challenge", now=now + 0.2, json=answer)
            self.group.solved += solved.status == 204
            retried = self._send(method, path, now=now + 0.3, params=params, json=json, headers=headers)
            if retried.status == 403 and retried.code == "challenge_required":
                self._challenged(retried, now)
            reply = Reply(retried.status, retried.code, retried.data, retried.body, retried.retry_after_s, True)
        if reply.code == "newcomer_limit":
            self.group.newcomer_limited += 1
            self.group.reasons["newcomer_limit"] += 1
        if reply.blocked:
            self.group.blocks += 1
            if self.group.first_block_at is None:
                self.group.first_block_at = now
            self.group.reasons[reason_of(reply.data)] += 1
        return reply

    def _challenged(self, reply: Reply, now: float) -> None:
        self.group.challenges += 1
        if self.group.first_challenge_at is None:
            self.group.first_challenge_at = now
        self.group.reasons[reason_of(reply.data)] += 1

    def _send(
        self,
        method: str,
        path: str,
        *,
        now: float,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        self.budget.take(self.requests)
        self.requests += 1
        self.group.requests += 1
        agent = self.user_agent() if callable(self.user_agent) else self.user_agent
        sent = {"User-Agent": agent, "X-Consentune-Sim-Time": f"{now:.3f}", **(headers or {})}
        forged = self.forged_xff() if self.forged_xff else None
        sent["X-Forwarded-For"] = f"{forged}, {self.address}" if forged else self.address
        if self.session_token and not self.keep_cookies:
            sent["X-Session-Token"] = self.session_token
        started = time.perf_counter()
        response = self._request(method, path, params=params, json=json, headers=sent)
        self.group.rtt_ms.append((time.perf_counter() - started) * 1000)
        timing = _TIMING_RE.search(response.headers.get("server-timing", ""))
        if timing:
            self.group.shield_ms.append(float(timing.group(1)))
        self.group.statuses[response.status_code] += 1
        return _reply(response, self.group)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TransportError:  # the server closed an idle keep-alive connection: reconnect once
            self.group.transport_errors += 1
            return self.http.request(method, path, **kwargs)

    def _received(self, url: str, reply: Reply) -> int:
        match = _RANGE_RE.match(reply.data or "")
        if match is None:
            raise AssertionError(f"206 without a Content-Range from {url}")
        start, end, size = (int(g) for g in match.groups())
        if end - start + 1 != len(reply.body):
            raise AssertionError(f"Content-Range {start}-{end} but {len(reply.body)} bytes from {url}")
        track_id = self.streams[url]
        expected = self.budget.sizes.get(track_id, size)
        if expected != size:  # the share's denominator must be what the server really serves
            raise AssertionError(f"{track_id} is served as {size} bytes; the catalogue says {expected}")
        self.group.ranges.add(track_id, start, end)
        if self.scope_audio is not None:
            self.scope_audio.add(identity=self.account_id or self.session_id or "-", address=self.address,
                                 now=self._now, track_id=track_id, start=start, end=end)  # fmt: skip
        return -1 if end + 1 >= size else end + 1


def _reply(response: httpx.Response, group: GroupStats) -> Reply:
    status = response.status_code
    if status == 206:
        return Reply(status, "", response.headers.get("content-range", ""), response.content, 0.0)
    data: Any = None
    if response.headers.get("content-type", "").startswith("application/json"):
        data = response.json()
    code = str(data["error"]["code"]) if isinstance(data, dict) and isinstance(data.get("error"), dict) else ""
    retry = float(response.headers.get("retry-after", "0") or 0)
    if status == 429 and isinstance(data, dict):
        retry = float(data["error"].get("retry_after_s", retry))
        if AHEAD_MESSAGE in _message(data):
            group.throttled_ahead += 1
        else:
            group.throttled_other += 1
            group.reasons[_message(data)[:60]] += 1
    return Reply(status, code, data, b"", retry)


def _message(data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("message", ""))
    return ""


def reason_of(data: Any) -> str:
    """A shield answer's decision reference (``#<record id>``, resolved to signal names after the run with
    :func:`consentune.bench.shieldsim.server.decision_names`), else the start of its message."""
    message = _message(data)
    found = _REFERENCE_RE.search(message)
    return f"#{found.group(1)}" if found else message[:60]


def random_address(rng: random.Random, first_octets: tuple[int, ...]) -> str:
    """A public-looking IPv4 address starting with one of ``first_octets``."""
    return f"{rng.choice(first_octets)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


__all__ = [
    "Budget",
    "BudgetExhausted",
    "ByteRanges",
    "GroupStats",
    "Reply",
    "ScopeAudio",
    "SimClient",
    "random_address",
    "reason_of",
]
