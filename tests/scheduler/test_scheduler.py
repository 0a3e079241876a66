"""One scheduler per deployment: the leader lease and per-job due times in SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from consentune.api import create_app
from consentune.config import Settings
from consentune.ledger.log import UsageRecord
from consentune.scheduler import LEADER_LEASE, Job, Scheduler, SqlLeases
from consentune.service import Consentune, open_service
from consentune.storage import make_engine, migrate
from tests.scheduler import _worker

REPO = Path(__file__).resolve().parents[2]
S = 1_000_000  # µs per second


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


def test_a_lease_has_one_holder_until_it_expires(engine: Engine) -> None:
    leases = SqlLeases(engine)
    assert leases.acquire("L", holder="a", ttl_s=10, now_us=0)
    assert not leases.acquire("L", holder="b", ttl_s=10, now_us=5 * S)
    assert leases.acquire("L", holder="a", ttl_s=10, now_us=6 * S)  # renewal moves the expiry on
    assert not leases.acquire("L", holder="b", ttl_s=10, now_us=15 * S)
    assert leases.holder("L", now_us=15 * S) == "a"
    assert leases.acquire("L", holder="b", ttl_s=10, now_us=16 * S)
    assert leases.holder("L", now_us=16 * S) == "b"
    leases.release("L", holder="a")  # not a's any more: nothing changes
    assert leases.holder("L", now_us=17 * S) == "b"
    leases.release("L", holder="b")
    assert leases.holder("L", now_us=17 * S) is None
    assert leases.acquire("L", holder="a", ttl_s=10, now_us=17 * S)


def test_a_job_is_claimed_once_per_period(engine: Engine) -> None:
    leases = SqlLeases(engine)
    assert leases.claim_due("job:x", holder="a", period_s=60, now_us=100 * S) == 100 * S
    assert leases.claim_due("job:x", holder="b", period_s=60, now_us=100 * S) is None
    assert leases.claim_due("job:x", holder="b", period_s=60, now_us=159 * S) is None
    assert leases.claim_due("job:x", holder="b", period_s=60, now_us=161 * S) == 160 * S
    assert leases.claim_due("job:x", holder="a", period_s=60, now_us=161 * S) is None


def test_only_the_leader_runs_jobs(engine: Engine) -> None:
    now = [1000.0]
    runs: list[str] = []
    make = [
        Scheduler(SqlLeases(engine), [Job("j", 10, lambda n=n: runs.append(n))], holder=n, lease_ttl_s=30,
                  clock=lambda: now[0])
        for n in ("a", "b")
    ]  # fmt: skip
    a, b = make
    assert a.tick() == [("j", 1000 * S)] and b.tick() == []
    assert a.is_leader and not b.is_leader
    now[0] = 1011.0
    assert b.tick() == [] and a.tick() == [("j", 1010 * S)]
    a.release()  # stepping down hands over at once
    now[0] = 1022.0
    assert b.tick() == [("j", 1021 * S)] and b.is_leader
    assert runs == ["a", "a", "b"]
    assert SqlLeases(engine).holder(LEADER_LEASE, now_us=1022 * S) == "b"


def test_stopping_waits_for_the_running_job_before_the_lease_is_released(engine: Engine) -> None:
    started, events = threading.Event(), []

    def slow() -> None:
        started.set()
        time.sleep(0.5)
        events.append(("job ended", SqlLeases(engine).holder(LEADER_LEASE, now_us=round(time.time() * S))))

    scheduler = Scheduler(SqlLeases(engine), [Job("slow", 60, slow)], holder="a")

    async def stop_mid_job() -> None:
        task = asyncio.create_task(scheduler.run_forever(0.05))
        await asyncio.to_thread(started.wait, 10)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        events.append(("stopped", SqlLeases(engine).holder(LEADER_LEASE, now_us=round(time.time() * S))))

    # a loop of its own, in a thread: the browser suite's Playwright session keeps this thread's loop running
    runner = threading.Thread(target=asyncio.run, args=(stop_mid_job(),))
    runner.start()
    runner.join(timeout=60)
    assert events == [("job ended", "a"), ("stopped", None)]  # the job kept its lease to the end; then released


def _spawn(url: str, log: Path, seconds: float, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.scheduler._worker", url, str(log), str(seconds), *extra],
                            cwd=REPO)  # fmt: skip


def test_several_processes_run_each_period_once_even_when_the_leader_dies(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    crasher = _spawn(database_url, log, 4.0, "crash")
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the crasher leads before the others start
    others = [_spawn(database_url, log, 6.0) for _ in range(2)]
    assert crasher.wait(timeout=60) == 0
    for process in others:
        assert process.wait(timeout=60) == 0
    runs = [line.split() for line in log.read_text().splitlines()]
    dues = [int(due) for _holder, _job, due in runs]
    assert len(dues) == len(set(dues)), "a period ran twice"
    assert dues == sorted(dues)
    gaps = [later - earlier for earlier, later in itertools.pairwise(dues)]
    assert min(gaps) >= _worker.PERIOD_S * S  # due times come from the database: exact, not measured
    holders = [holder for holder, _job, _due in runs]
    terms = [h for i, h in enumerate(holders) if i == 0 or holders[i - 1] != h]
    assert terms[0] == f"pid{crasher.pid}" and len(terms) >= 2  # the crashed leader was replaced
    assert len(terms) == len(set(terms))  # leadership moved only when a leader went away, never back and forth
    assert holders.count(terms[0]) >= 2 and len(runs) >= 6


def test_two_api_workers_run_periodic_jobs_from_the_leader_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    workers = [open_service(Settings(home=tmp_path / f"w{i}", database_url=url)) for i in range(2)]
    workers[0].ledger.append([UsageRecord("service:test", "read-audio", "recommend", "trk_1", "allow", "test")])
    apps = [create_app(w, wal_interval_s=0.2, sweep_interval_s=0.2, scheduler_tick_s=0.05) for w in workers]
    try:
        with TestClient(apps[0]), TestClient(apps[1]):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and sum(_job_runs(w, "wal-checkpoint") for w in workers) < 3:
                time.sleep(0.05)
            leaders = [w.metrics.leader._value.get() for w in workers]
            runs = [_job_runs(w, "wal-checkpoint") for w in workers]
        assert sorted(leaders) == [0.0, 1.0]
        leader = leaders.index(1.0)
        assert runs[leader] >= 3 and runs[1 - leader] == 0  # the other worker never ran a job
        size = workers[0].ledger.size  # integrates (and signs) what the first worker queued
        assert workers[1].ledger.recent_checkpoints(limit=1)[0].size == size
    finally:
        for w in workers:
            w.close()


def _job_runs(svc: Consentune, job: str) -> float:
    return float(svc.metrics.job_runs.labels(job, "ok")._value.get())
