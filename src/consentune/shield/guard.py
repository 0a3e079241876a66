"""Shield guard: rate limits, blocks, behavioural verdicts and the real-time stream budget, in one place.

The HTTP layer turns each listener request into an :class:`AccessEvent` and
asks :meth:`ShieldGuard.check`; the answer is allow, throttle (429),
challenge (a proof of work) or block.  Challenges and blocks are recorded
with the signals that explain them; an operator lifts blocks.  Audio itself
stays behind session-bound signed URLs whatever a client solves, and a
session never gets audio faster than real time plus a buffer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from consentune.errors import NotFound
from consentune.ports import ShieldRecord, ShieldRepo
from consentune.shield.challenge import Challenge, ChallengeIssuer
from consentune.shield.detect import AccessEvent, ScraperDetector, Verdict
from consentune.shield.ratelimit import Rate, RateLimiter


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
    action: str  # allow | throttle | challenge | block
    reason: str = ""
    retry_after_s: float = 0.0
    challenge: Challenge | None = None
    verdict: Verdict | None = None

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
}


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
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = repo
        self._limiter = limiter
        self._detector = detector
        self._challenges = challenges
        self._rates = rates or ShieldRates()
        self._challenge_valid_s = challenge_valid_s
        self._buffer_ahead_s = buffer_ahead_s
        self._block_cache_s = block_cache_s
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._blocked: dict[str, int] = {}
        self._blocked_loaded_at = float("-inf")

    # -- decisions ----------------------------------------------------------
    def check(self, event: AccessEvent, *, challenge_passed_at: float | None = None) -> Outcome:
        """Decide one listener request.  Order: blocks, rate limits, behaviour."""
        subjects = _subjects(event)
        blocked = self._blocked_subject(subjects)
        if blocked is not None:
            return Outcome("block", reason=f"{blocked} is blocked; an operator can lift it")
        throttled = self._rate_limit(event, subjects)
        if throttled is not None:
            return throttled
        verdict = self._detector.observe(event)
        if verdict.action == "block":
            self._record(verdict, event.at, block=True)
            return Outcome("block", reason=_explain(verdict), verdict=verdict)
        if verdict.action == "challenge":
            passed = challenge_passed_at is not None and event.at - challenge_passed_at < self._challenge_valid_s
            if not passed:
                self._record(verdict, event.at, block=False)
                challenge = self._challenges.issue(subject=f"session:{event.session_id}", now=event.at)
                return Outcome("challenge", reason=_explain(verdict), challenge=challenge, verdict=verdict)
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
        self, *, action: str | None = None, active_only: bool = False, limit: int = 200
    ) -> list[ShieldRecord]:
        """Stored decisions, newest first."""
        return self._repo.shield_decisions(action=action, active_only=active_only, limit=limit)

    def lift(self, record_id: int, *, by: str, now: float) -> None:
        """Lift a block: recorded with who lifted it; this worker's detector forgives the subject too."""
        subject = next(
            (r.subject for r in self._repo.shield_decisions(active_only=True, limit=1_000_000) if r.id == record_id),
            None,
        )
        if not self._repo.lift_block(record_id, at=now, by=by):
            raise NotFound(f"no active shield decision {record_id}", hint="list them with `consentune shield blocks`")
        with self._lock:
            self._blocked = {s: i for s, i in self._blocked.items() if i != record_id}
        if subject is not None:
            self._detector.forgive(subject)

    def status(self) -> dict[str, object]:
        blocks = self._repo.shield_decisions(action="block", active_only=True, limit=100_000)
        challenges = self._repo.shield_decisions(action="challenge", limit=100_000)
        return {"active_blocks": len(blocks), "challenges_logged": len(challenges), "detector": self._detector.stats()}

    # -- internals ----------------------------------------------------------
    def _rate_limit(self, event: AccessEvent, subjects: dict[str, str]) -> Outcome | None:
        for subject_kind, rate_name in _RATE_FOR_KIND.get(event.kind, ()):
            subject = subjects.get(subject_kind)
            if subject is None:
                continue
            ok, retry = self._limiter.hit(f"{rate_name}:{subject}", getattr(self._rates, rate_name), now=event.at)
            if not ok:
                return Outcome("throttle", reason=f"rate limit {rate_name} for {subject}", retry_after_s=retry)
        return None

    def _blocked_subject(self, subjects: dict[str, str]) -> str | None:
        now = self._wall()
        if now - self._blocked_loaded_at > self._block_cache_s:
            active = self._repo.shield_decisions(action="block", active_only=True, limit=1_000_000)
            with self._lock:
                self._blocked = {r.subject: r.id for r in active}
                self._blocked_loaded_at = now
        return next((s for s in subjects.values() if s in self._blocked), None)

    def _record(self, verdict: Verdict, at: float, *, block: bool) -> None:
        record_id = self._repo.record_shield_decision(
            ShieldRecord(0, at, verdict.subject, verdict.action, verdict.score,
                         tuple(asdict(s) for s in verdict.signals))
        )  # fmt: skip
        if block:
            with self._lock:
                self._blocked[verdict.subject] = record_id


def _subjects(event: AccessEvent) -> dict[str, str]:
    subjects = {"session": f"session:{event.session_id}", "address": f"address:{event.address}"}
    if event.account_id:
        subjects["account"] = f"account:{event.account_id}"
    return subjects


def _explain(verdict: Verdict) -> str:
    return "; ".join(s.explanation for s in verdict.signals) or f"score {verdict.score:.2f}"


__all__ = ["Outcome", "ShieldGuard", "ShieldRates"]
