"""The guard on real storage (SQLite and PostgreSQL): blocks end when documented, across restarts."""

from __future__ import annotations

from dataclasses import replace

from consentune.ports import ShieldRecord
from consentune.service import Consentune
from consentune.shield.challenge import ChallengeIssuer
from consentune.shield.detect import AccessEvent, ScraperDetector
from consentune.shield.guard import ShieldGuard
from consentune.shield.ratelimit import MemoryRateLimiter

T0 = 1_800_000_000.0
DAY = 86_400.0
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/133.0"


def guard_on(svc: Consentune) -> ShieldGuard:
    """A freshly started worker: nothing in memory, everything from the database."""
    return ShieldGuard(repo=svc.store, limiter=MemoryRateLimiter(), detector=ScraperDetector(crawler_tokens=["GPTBot"]),
                       challenges=ChallengeIssuer(b"c" * 32), block_cache_s=0.0)  # fmt: skip


def play(session: str, at: float, *, address: str = "203.0.113.5") -> AccessEvent:
    return AccessEvent(at=at, kind="play", session_id=session, address=address, user_agent=BROWSER,
                       account_id=None, track_id="trk_1", catalog_index=1, duration_s=200.0)  # fmt: skip


def test_a_block_ends_a_day_after_it_was_decided_even_across_restarts(svc: Consentune) -> None:
    subject = "session:sid_kept_cookie"
    svc.store.record_shield_decision(ShieldRecord(0, T0, subject, "block", 2.0, ({"name": "no_progress"},)))
    during = guard_on(svc).check(play("sid_kept_cookie", T0 + DAY - 60))
    assert during.action == "block" and during.reference is not None
    assert guard_on(svc).check(play("sid_other", T0 + 60)).action == "allow"
    restarted = guard_on(svc)  # the browser kept its cookie: the same session, after the block ended
    assert restarted.check(play("sid_kept_cookie", T0 + DAY + 60)).action == "allow"
    assert restarted.check(play("sid_kept_cookie", T0 + DAY + 400)).action == "allow"


def test_a_worker_that_saw_the_block_also_lets_it_end(svc: Consentune) -> None:
    guard = guard_on(svc)
    crawler = replace(play("sid_bot", T0, address="203.0.113.6"), user_agent="Mozilla/5.0 (compatible; GPTBot/1.2)")
    assert guard.check(crawler).action == "block"
    assert guard.check(replace(crawler, kind="page", at=T0 + 10)).action == "block"
    assert guard.check(replace(crawler, kind="page", at=T0 + DAY + 10)).action == "allow"
    assert [d.subject for d in guard.decisions(action="block")] == ["session:sid_bot"]
