"""Shield guard: rate limits, blocks, behavioural verdicts and the real-time stream budget, in one place.

The HTTP layer turns each listener request into an :class:`AccessEvent` and
asks :meth:`ShieldGuard.check`; the answer is allow, throttle (429),
challenge (a proof of work) or block.  Challenges and blocks are recorded
with the signals that explain them; an operator lifts blocks, and a block
ends by itself ``block_s`` after it was decided.  Audio itself stays behind
session-bound stream URLs whatever a client solves, and a session never
gets audio faster than real time plus a buffer.

An :class:`Outcome` has two texts.  ``reason`` is for the operator: the
signals with their numbers and the identities involved.  ``message`` is for
the client: it names no other listener, no address's history and no
threshold, so it teaches a scraper nothing about what to stay under; it
carries a ``reference`` (the decision's record id) a listener can quote.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from consentune.errors import NotFound
from consentune.ports import ShieldRecord, ShieldRepo
from consentune.shield.blockboard import SharedBlocks
from consentune.shield.cells import SharedCells, Take
from consentune.shield.challenge import Challenge, ChallengeIssuer
from consentune.shield.detect import AccessEvent, ScraperDetector, Verdict
from consentune.shield.ratelimit import Rate, RateLimiter
from consentune.shield.shareddetect import cell_keys


@dataclass(frozen=True)
class ShieldRates:
    """Token buckets per request kind and subject (per second, burst)."""

    pages_per_address: Rate = field(default_factory=lambda: Rate(per_second=10.0, burst=120.0))
    plays_per_session: Rate = field(default_factory=lambda: Rate(per_second=0.2, burst=12.0))
    plays_per_account: Rate = field(default_factory=lambda: Rate(per_second=0.2, burst=20.0))
    streams_per_session: Rate = field(default_factory=lambda: Rate(per_second=20.0, burst=200.0))
    signups_per_address: Rate = field(default_factory=lambda: Rate(per_second=1 / 120, burst=5.0))
    sessions_per_address: Rate = field(default_factory=lambda: Rate(per_second=1 / 30, burst=20.0))


@dataclass(frozen=True)
class Outcome:
    """``action``: allow | throttle | challenge | block; ``reason`` for the operator, ``message`` for the client."""

    action: str
    reason: str = ""
    retry_after_s: float = 0.0
    challenge: Challenge | None = None
    verdict: Verdict | None = None
    message: str = ""
    reference: int | None = None

    @property
    def allowed(self) -> bool:
        return self.action == "allow"


_RATE_FOR_KIND: dict[str, tuple[tuple[str, str], ...]] = {
    "page": (("address", "pages_per_address"),),
    "search": (("address", "pages_per_address"),),
    "play": (("session", "plays_per_session"), ("account", "plays_per_account")),
    "stream": (("session", "streams_per_session"),),
    "progress": (("session", "streams_per_session"),),
    "signup": (("address", "signups_per_address"),),
    "session": (("address", "sessions_per_address"),),
    "challenge": (("session", "plays_per_session"),),
}

AUTOMATED = "this listening looks automated, so this request was refused"
LOCKDOWN = (
    "audio is paused for new identities on this network after abuse from it; "
    "listeners with an established account are not affected"
)
CRAWLER = "AI crawlers get no audio from this service"
CHALLENGE = "please confirm you are a person by solving the proof-of-work challenge"
THROTTLED = "too many requests; slow down"


class ShieldGuard:
    def __init__(
        self,
        *,
        repo: ShieldRepo,
        limiter: RateLimiter,
        detector: ScraperDetector,
        challenges: ChallengeIssuer,
        rates: ShieldRates | None = None,
        challenge_valid_s: float = 3600.0,
        buffer_ahead_s: float = 30.0,
        block_cache_s: float = 5.0,
        block_s: float | None = None,
        wall_clock: Callable[[], float] = time.monotonic,
        shared: SharedCells | None = None,
    ) -> None:
        self._repo = repo
        self._limiter = limiter
        self._detector = detector
        self._challenges = challenges
        self._rates = rates or ShieldRates()
        self._challenge_valid_s = challenge_valid_s
        self._buffer_ahead_s = buffer_ahead_s
        self._block_cache_s = block_cache_s
        self._block_s = detector.config.block_s if block_s is None else block_s
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._blocked: dict[str, tuple[int, float]] = {}  # subject -> (record id, blocked until)
        self._blocked_loaded_at = float("-inf")
        self._refused: OrderedDict[str, int] = OrderedDict()  # lockdown refusals recorded: subject -> record id
        self._board = None if shared is None else SharedBlocks(shared, block_s=self._block_s)

    # -- decisions ----------------------------------------------------------
    def check(self, event: AccessEvent, *, challenge_passed_at: float | None = None) -> Outcome:
        """Decide one listener request.  Order: blocks, rate limits, behaviour.

        With shared state this costs two round trips: one reads the block cells and the detector's
        subjects and takes the rate limits' tokens (unless a block holds), one commits the detector's
        update.  When this worker's copy of the database holds a block for the request, no tokens are
        taken ahead (the block may have been lifted elsewhere, which only the board can tell)."""
        subjects = _subjects(event)
        cached = self._cached_blocks(subjects, now=event.at)
        hits = self._hits(event, subjects)
        if self._board is None:
            return self._check(event, subjects, cached, hits, None, challenge_passed_at)
        takes = () if cached else [Take(key, rate.per_second, rate.burst) for key, rate in hits]
        with self._board.prefetched(list(subjects.values()), cell_keys(event), takes=takes, now=event.at) as taken:
            return self._check(event, subjects, cached, hits, taken, challenge_passed_at)

    def _check(
        self,
        event: AccessEvent,
        subjects: dict[str, str],
        cached: list[tuple[str, tuple[int, float]]],
        hits: list[tuple[str, Rate]],
        taken: list[tuple[bool, float]] | None,
        challenge_passed_at: float | None,
    ) -> Outcome:
        blocked = self._blocked_subject(subjects, cached, now=event.at)
        if blocked is not None:
            subject, record_id = blocked
            reason = f"{subject} is blocked (decision {record_id}); an operator can lift it"
            return Outcome("block", reason=reason, message=AUTOMATED, reference=record_id)
        throttled = self._rate_limit(event, hits, taken)
        if throttled is not None:
            return throttled
        if event.kind == "challenge":  # answering a challenge is no behaviour to judge (nor to challenge again)
            return Outcome("allow")
        verdict = self._detector.observe(event)
        for account_id, established_at in self._detector.drain_trust_changes():
            self._repo.set_account_established(account_id, at=established_at)
        if verdict.action == "block":
            refused = any(s.name == "ban_evasion" for s in verdict.signals)  # refused while it lasts, not blocked
            decision = self._note_refusal(verdict, event.at) if refused else self._record(verdict, event.at, block=True)
            return Outcome("block", reason=_explain(verdict), verdict=verdict, message=_public(verdict),
                           reference=decision)  # fmt: skip
        if verdict.action == "challenge":
            passed = challenge_passed_at is not None and event.at - challenge_passed_at < self._challenge_valid_s
            if not passed:
                record_id = self._record(verdict, event.at, block=False)
                challenge = self._challenges.issue(subject=f"session:{event.session_id}", now=event.at)
                return Outcome("challenge", reason=_explain(verdict), challenge=challenge, verdict=verdict,
                               message=CHALLENGE, reference=record_id)  # fmt: skip
        return Outcome("allow", verdict=verdict)

    def verify_challenge(self, *, session_id: str, token: str, nonce: str, now: float) -> bool:
        return self._challenges.verify(token=token, nonce=nonce, subject=f"session:{session_id}", now=now)

    # -- real-time stream budget ---------------------------------------------
    def stream_budget(self, *, started_at: float, size_bytes: int, duration_s: float, now: float) -> int:
        """Bytes of a track a player may have fetched by ``now``: real time since ``started_at`` plus a buffer.

        ``started_at`` comes from the signed stream token, so every worker
        enforces the same budget without shared state.
        """
        fraction = (now - started_at + self._buffer_ahead_s) / max(duration_s, 1e-3)
        return int(size_bytes * min(1.0, max(0.0, fraction)))

    # -- operator -----------------------------------------------------------
    def decisions(
        self, *, action: str | None = None, active_only: bool = False, limit: int = 200, now: float | None = None
    ) -> list[ShieldRecord]:
        """Recorded decisions, newest first; ``active_only``: not lifted, and for blocks not yet ended at
        ``now`` (default: the wall clock)."""
        records = self._repo.shield_decisions(action=action, active_only=active_only, limit=limit)
        if not active_only:
            return records
        at = time.time() if now is None else now
        return [r for r in records if r.action != "block" or r.at + self._block_s > at]

    def lift(self, record_id: int, *, by: str, now: float) -> None:
        """Lift a block: recorded with who lifted it; this worker's detector forgives the subject too."""
        subject = next(
            (r.subject for r in self._repo.shield_decisions(active_only=True, limit=1_000_000) if r.id == record_id),
            None,
        )
        if not self._repo.lift_block(record_id, at=now, by=by):
            raise NotFound(f"no active shield decision {record_id}", hint="list them with `consentune shield blocks`")
        with self._lock:
            self._blocked = {s: b for s, b in self._blocked.items() if b[0] != record_id}
        if self._board is not None:
            self._board.lift(record_id, subject)
        if subject is not None:
            self._detector.forgive(subject)

    def status(self) -> dict[str, object]:
        blocks = self._repo.shield_decisions(action="block", active_only=True, since=time.time() - self._block_s,
                                             limit=100_000)  # fmt: skip
        challenges = self._repo.shield_decisions(action="challenge", limit=100_000)
        scope = "this process" if self._board is None else "deployment"  # shared cells count every worker's
        return {"active_blocks": len(blocks), "challenges_logged": len(challenges), "detector": self._detector.stats(),
                "detector_scope": scope}  # fmt: skip

    def detector_counts(self) -> dict[str, int] | None:
        """Every worker's detector counts when the shield's state is shared; None when each process keeps its own."""
        return None if self._board is None else self._detector.stats()

    # -- internals ----------------------------------------------------------
    def _hits(self, event: AccessEvent, subjects: dict[str, str]) -> list[tuple[str, Rate]]:
        """The rate-limit buckets ``event`` takes a token from, in the order they are checked."""
        return [
            (f"{rate_name}:{subject}", getattr(self._rates, rate_name))
            for subject_kind, rate_name in _RATE_FOR_KIND.get(event.kind, ())
            if (subject := subjects.get(subject_kind)) is not None
        ]

    def _rate_limit(
        self, event: AccessEvent, hits: list[tuple[str, Rate]], taken: list[tuple[bool, float]] | None
    ) -> Outcome | None:
        """The first bucket out of tokens, as a throttle.  ``taken``: the tokens already taken with the
        shared reads (up to the first refused), else this asks the rate limiter."""
        for n, (key, rate) in enumerate(hits):
            ok, retry = taken[n] if taken is not None else self._limiter.hit(key, rate, now=event.at)
            if not ok:
                rate_name, subject = key.split(":", 1)
                reason = f"rate limit {rate_name} for {subject}"
                return Outcome("throttle", reason=reason, retry_after_s=retry, message=THROTTLED)
        return None

    def _cached_blocks(self, subjects: dict[str, str], *, now: float) -> list[tuple[str, tuple[int, float]]]:
        """This worker's copy of the database's live blocks on ``subjects``, reloaded every
        ``block_cache_s``.  Blocks older than ``block_s`` (on the shield's clock) have ended and are
        neither reloaded nor honoured."""
        wall = self._wall()
        if wall - self._blocked_loaded_at > self._block_cache_s:
            live = self._repo.shield_decisions(
                action="block", active_only=True, since=now - self._block_s, limit=1_000_000
            )
            with self._lock:
                self._blocked = {}
                for r in sorted(live, key=lambda r: r.at):
                    self._blocked[r.subject] = (r.id, r.at + self._block_s)
                self._blocked_loaded_at = wall
        return [(s, b) for s in subjects.values() if (b := self._blocked.get(s)) is not None and now < b[1]]

    def _blocked_subject(
        self, subjects: dict[str, str], cached: list[tuple[str, tuple[int, float]]], *, now: float
    ) -> tuple[str, int] | None:
        """The first of ``subjects`` under a live block, with its record id."""
        if self._board is not None:  # other workers' blocks at once, and no block another worker lifted
            return self._board.first_blocked(list(subjects.values()), cached, now=now)
        return (cached[0][0], cached[0][1][0]) if cached else None

    def _note_refusal(self, verdict: Verdict, at: float) -> int | None:
        """Record a lockdown refusal once per identity (not one row per refused request), and with shared
        state once per deployment; this worker remembers the record id."""
        with self._lock:
            known = self._refused.get(verdict.subject)
        if known is not None:
            return known
        if self._board is None:
            record_id: int | None = self._record(verdict, at, block=False)
        else:
            c = self._detector.config
            record_id = self._board.record_once(verdict.subject, lambda: self._record(verdict, at, block=False),
                                                ttl_s=max(c.idle_forget_s, c.block_s, c.lockdown_s))  # fmt: skip
        if record_id is None:
            return None
        with self._lock:
            self._refused[verdict.subject] = record_id
            if len(self._refused) > 100_000:
                self._refused.popitem(last=False)
        return record_id

    def _record(self, verdict: Verdict, at: float, *, block: bool) -> int:
        action = verdict.action if block or verdict.action != "block" else "lockdown"
        record_id = self._repo.record_shield_decision(
            ShieldRecord(0, at, verdict.subject, action, verdict.score, tuple(asdict(s) for s in verdict.signals))
        )
        if block:
            with self._lock:
                self._blocked[verdict.subject] = (record_id, at + self._block_s)
            if self._board is not None:
                self._board.block(verdict.subject, record_id, until=at + self._block_s)
        return record_id


def _subjects(event: AccessEvent) -> dict[str, str]:
    subjects = {"session": f"session:{event.session_id}", "address": f"address:{event.address}"}
    if event.account_id:
        subjects["account"] = f"account:{event.account_id}"
    return subjects


def _explain(verdict: Verdict) -> str:
    return "; ".join(s.explanation for s in verdict.signals) or f"score {verdict.score:.2f}"


def _public(verdict: Verdict) -> str:
    """What the client is told about a block: the kind of refusal only, never the evidence or its numbers."""
    names = {s.name for s in verdict.signals}
    if "ai_crawler" in names:
        return CRAWLER
    if "ban_evasion" in names:
        return LOCKDOWN
    return AUTOMATED


__all__ = ["Outcome", "ShieldGuard", "ShieldRates"]
