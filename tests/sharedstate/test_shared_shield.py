"""Two services over one database and one shield state (= two workers) act as one shield.

Modes: Redis (workers on any host) and the SQLite state file
(``serve --workers N`` on one host).  Each test drives the services'
own guards and listener desks, as the HTTP layer does.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from consentune.config import Settings
from consentune.errors import StreamSuperseded
from consentune.service import Consentune, open_service
from consentune.shield.detect import AccessEvent
from consentune.shield.shareddetect import SharedScraperDetector
from tests.cli import run
from tests.sharedstate.conftest import SharedRedis
from tests.shield.test_detect import T0, Who, concurrent_plays, ev, same, sequential, shuffled

COUNTS = ("events", "allow", "challenge", "block", "forgotten")


@dataclass
class Workers:
    a: Consentune
    b: Consentune
    root: Path


@pytest.fixture(params=["redis", "file"])
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workers]:
    home, url = tmp_path / "home", f"sqlite:///{tmp_path / 'c.db'}"
    if request.param == "redis":
        shared: SharedRedis = request.getfixturevalue("shared_redis")
        settings = shared.settings(home, url)
    else:
        settings = Settings(home=home, database_url=url, identify_at_ingest=False, shield_state="file")
    a, b = open_service(settings), open_service(settings)
    assert isinstance(a.listen.guard._detector, SharedScraperDetector)
    yield Workers(a, b, tmp_path)
    a.close()
    b.close()


def _scraper(seed: int) -> list[AccessEvent]:
    rng = random.Random(seed)
    who = Who(f"scraper{seed}", f"198.51.100.{seed}", agent=rng.choice(["python-requests/2.32", "curl/8.5"]))
    order = shuffled(seed) if seed % 2 else sequential()
    return list(concurrent_plays(same(who), order, start=T0, concurrency=rng.choice([3, 6]), gap_s=2.0, tracks=30))


@pytest.mark.parametrize("seed", [1, 2])
def test_a_scraper_split_across_two_workers_is_stopped_as_on_one(workers: Workers, seed: int) -> None:
    events = _scraper(seed)
    alone = open_service(Settings(home=workers.root / "alone", database_url=f"sqlite:///{workers.root / 'a.db'}",
                                  identify_at_ingest=False, shield_state="memory"))  # fmt: skip
    try:
        one = [alone.listen.guard.check(e).action for e in events]
        one_counts = alone.listen.guard._detector.stats()
    finally:
        alone.close()
    guards = [workers.a.listen.guard, workers.b.listen.guard]
    rng = random.Random(seed)
    split = [guards[rng.randrange(2)].check(e).action for e in events]
    assert "block" in one
    assert split == one
    blocks = workers.a.listen.guard.decisions(action="block", active_only=True, now=T0)
    assert len(blocks) == 1  # decided once, whichever worker saw the scraper next
    counted = [g.status() for g in guards]
    assert counted[0] == counted[1] and counted[0]["detector_scope"] == "deployment"
    assert {k: counted[0]["detector"][k] for k in COUNTS} == {k: one_counts[k] for k in COUNTS}  # type: ignore[index]


def test_one_active_stream_per_listener_across_workers(workers: Workers, audio_files: dict[str, bytes]) -> None:
    svc = workers.a
    artist = svc.catalog.add_artist("Ada", actor="admin:test")
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=artist, title="A", actor="t").track
    now = time.time()
    account_id, token = svc.listen.create_account(address="203.0.113.9", now=now)
    _c, phone, _a = svc.listen.create_session(account_token=token, address="203.0.113.9", user_agent="p", now=now)
    _c, laptop, _a = svc.listen.create_session(account_token=token, address="203.0.113.9", user_agent="l", now=now)
    first, _, _ = workers.a.listen.start_play(session_id=phone, track=track, now=now, account_id=account_id)
    workers.b.listen.verify_stream(first, session_id=phone, now=now + 1, account_id=account_id)
    second, _, _ = workers.b.listen.start_play(session_id=laptop, track=track, now=now + 2, account_id=account_id)
    with pytest.raises(StreamSuperseded):
        workers.a.listen.verify_stream(first, session_id=phone, now=now + 3, account_id=account_id)
    workers.a.listen.verify_stream(second, session_id=laptop, now=now + 3, account_id=account_id)
    # after a long pause the laptop continues its play on the other worker; the phone's old play cannot be
    later = now + 3600
    _t, _e, resumed = workers.a.listen.start_play(session_id=laptop, track=track, now=later, account_id=account_id,
                                                  resume=second)  # fmt: skip
    assert resumed
    _t, _e, resumed = workers.b.listen.start_play(session_id=phone, track=track, now=later + 1, account_id=account_id,
                                                  resume=first)  # fmt: skip
    assert not resumed


def test_a_block_and_its_lift_reach_every_worker_at_once(workers: Workers) -> None:
    bot = Who("bot", "192.0.2.80", agent="Mozilla/5.0 (compatible; GPTBot/1.2)")
    blocked = workers.a.listen.guard.check(ev(bot, T0, "play", track_id="trk_1", catalog_index=1, duration_s=200.0))
    assert blocked.action == "block" and blocked.reference is not None
    on_b = workers.b.listen.guard.check(ev(bot, T0 + 5, "page"))
    assert on_b.action == "block" and on_b.reference == blocked.reference  # the same decision, not a second one
    workers.b.listen.guard.lift(blocked.reference, by="admin:test", now=T0 + 10)
    assert workers.a.listen.guard.check(ev(bot, T0 + 11, "page")).action == "allow"
    assert workers.b.listen.guard.check(ev(bot, T0 + 12, "page")).action == "allow"


def test_a_lockdown_decided_on_one_worker_holds_on_the_other(workers: Workers) -> None:
    address = "192.0.2.81"
    bot = Who("bot2", address, agent="Mozilla/5.0 (compatible; GPTBot/1.2)")
    blocked = workers.a.listen.guard.check(ev(bot, T0, "play", track_id="trk_1", catalog_index=1, duration_s=200.0))
    assert blocked.action == "block"
    newcomer = Who("fresh", address, account="fresh-account")
    refused = workers.b.listen.guard.check(ev(newcomer, T0 + 60, "play", track_id="trk_2", duration_s=200.0))
    assert refused.action == "block" and refused.verdict is not None
    assert refused.verdict.signals[0].name == "ban_evasion"
    again = workers.a.listen.guard.check(ev(newcomer, T0 + 65, "play", track_id="trk_3", duration_s=200.0))
    assert again.action == "block" and again.reference == refused.reference is not None
    recorded = [r for r in workers.a.listen.guard.decisions(action="lockdown") if r.subject == "session:fresh"]
    assert len(recorded) == 1  # one record of the refusal in the deployment, not one per worker
    elsewhere = workers.b.listen.guard.check(
        replace(ev(newcomer, T0 + 70, "play", track_id="trk_3", duration_s=200.0), address="203.0.113.200")
    )
    assert elsewhere.action == "allow"
    assert blocked.reference is not None
    workers.b.listen.guard.lift(blocked.reference, by="admin:test", now=T0 + 80)
    later = Who("later", address, account="later-account")
    after = workers.a.listen.guard.check(ev(later, T0 + 90, "play", track_id="trk_4", duration_s=200.0))
    assert after.action == "allow"


def test_the_operator_cli_shows_every_workers_detector_counts(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve --workers N` without Redis shares the state file; `shield status` (setting `auto`) reads it."""
    monkeypatch.delenv("CONSENTUNE_SHIELD_STATE", raising=False)
    monkeypatch.delenv("CONSENTUNE_REDIS_URL", raising=False)
    settings = replace(Settings.from_env(), shield_state="file")
    a, b = open_service(settings), open_service(settings)
    try:
        for n, guard in enumerate([a.listen.guard, b.listen.guard, b.listen.guard]):
            guard.check(ev(Who(f"s{n}", f"203.0.113.{n + 1}"), T0 + n, "page"))
    finally:
        a.close()
        b.close()
    code, out, _ = run(capsys, "shield", "status", "--json")
    assert code == 0
    detector = json.loads(out)["detector"]
    assert detector["events"] == 3 and detector["allow"] == 3
    code, out, _ = run(capsys, "shield", "status")
    assert code == 0 and "detector, every worker: 3 events, 3 allow" in out
