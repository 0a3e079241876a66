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


def _listen(guard: ShieldGuard, svc: Consentune, session_id: str, at: float, track: int) -> list[str]:
    """One honest three-minute play through ``guard``, every event carrying what storage knows of the account."""
    stored = svc.store.listener_session(session_id)
    assert stored is not None
    base = replace(play(session_id, at, address=stored.address), track_id=f"trk_{track}", catalog_index=track,
                   duration_s=180.0, account_id=stored.account_id, account_created_at=stored.account_created_at,
                   account_established_at=stored.account_established_at)  # fmt: skip
    events = [base, replace(base, kind="stream", at=at + 1, nbytes=180 * 16_000, track_bytes=180 * 16_000)]
    events += [replace(base, kind="progress", at=at + t, position_s=float(t)) for t in range(15, 181, 15)]
    return [guard.check(e).action for e in events]


def test_listening_history_survives_a_restart_and_a_lockdown(svc: Consentune) -> None:
    from consentune.ports import ListenerSession

    address = "203.0.113.77"
    svc.store.add_listener_account("acc_old", "f" * 64, at=T0 - 400 * DAY, address=address)
    svc.store.add_listener_session(ListenerSession("sid_monday", "acc_old", T0, address, BROWSER, None))
    first = guard_on(svc)
    for n in range(3):
        assert set(_listen(first, svc, "sid_monday", T0 + n * 300, 10 + n)) == {"allow"}
    monday = svc.store.listener_session("sid_monday")
    assert monday is not None and monday.account_established_at is not None  # the history is in the database

    restarted = guard_on(svc)  # two idle days later, on a new worker; a scraper got blocked here meanwhile
    later = T0 + 2 * DAY
    bot = replace(play("sid_bot", later, address=address), user_agent="Mozilla/5.0 (compatible; GPTBot/1.2)")
    assert restarted.check(bot).action == "block"
    svc.store.add_listener_session(ListenerSession("sid_wednesday", "acc_old", later, address, BROWSER, None))
    assert set(_listen(restarted, svc, "sid_wednesday", later + 60, 20)) == {"allow"}
    svc.store.add_listener_account("acc_new", "e" * 64, at=later, address=address)
    svc.store.add_listener_session(ListenerSession("sid_new", "acc_new", later, address, BROWSER, None))
    assert "block" in _listen(restarted, svc, "sid_new", later + 120, 30)  # newcomers still wait out the lockdown
    crawling = replace(play("sid_wednesday", later + 900, address=address), account_id="acc_old",
                       user_agent="Mozilla/5.0 (compatible; GPTBot/1.2)")  # fmt: skip
    assert restarted.check(crawling).action == "block"
    wednesday = svc.store.listener_session("sid_wednesday")
    assert wednesday is not None and wednesday.account_established_at is None  # trust is lost with the block


def test_a_lockdown_refuses_audio_only_while_it_lasts_and_is_recorded_once_per_identity(svc: Consentune) -> None:
    guard = guard_on(svc)
    address = "203.0.113.88"
    bot = replace(play("sid_bot8", T0, address=address), user_agent="Mozilla/5.0 (compatible; GPTBot/1.2)")
    assert guard.check(bot).action == "block"
    refusals = [guard.check(play("sid_newcomer", T0 + 60 * i, address=address)) for i in range(1, 4)]
    assert [r.action for r in refusals] == ["block"] * 3 and len({r.reference for r in refusals}) == 1
    assert len(guard.decisions(action="lockdown")) == 1 and len(guard.decisions(action="block")) == 1
    browsing = replace(play("sid_newcomer", T0 + 300, address=address), kind="page")
    assert guard.check(browsing).action == "allow"  # a lockdown is about audio only
    assert guard_on(svc).check(play("sid_newcomer", T0 + DAY + 60, address=address)).action == "allow"
    assert guard.check(play("sid_newcomer", T0 + DAY + 120, address=address)).action == "allow"


def test_the_operator_sees_ended_blocks_as_ended(svc: Consentune) -> None:
    old = svc.store.record_shield_decision(ShieldRecord(0, T0 - 2 * DAY, "session:sid_a", "block", 2.0, ()))
    new = svc.store.record_shield_decision(ShieldRecord(0, T0 - 60, "session:sid_b", "block", 2.0, ()))
    guard = guard_on(svc)
    assert [r.id for r in guard.decisions(action="block", active_only=True, now=T0)] == [new]
    assert {r.id for r in guard.decisions(action="block", now=T0)} == {old, new}
