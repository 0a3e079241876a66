"""The sequencer on SQLite and PostgreSQL: queued appends, one integrator, nothing lost to a crash.

An append is acknowledged once its batch is durably queued.  These tests
show that acknowledged entries always reach the log with consecutive
sequence numbers, that an append inside the caller's transaction commits or
rolls back with it, and that SIGKILLing the integrator mid-batch (a few
times, while appenders keep appending) loses nothing and leaves audit clean.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

import consentune
from consentune.config import Settings
from consentune.errors import InvalidInput, NotFound
from consentune.ledger.log import LedgerTicket, UsageRecord
from consentune.service import Consentune, open_service
from consentune.storage import tables
from consentune.storage.engine import write_transaction
from consentune.types import RECOMMEND


def _records(n: int, *, tag: str) -> list[UsageRecord]:
    return [
        UsageRecord("service:seq", "read-audio", RECOMMEND, f"trk_{i % 5}", "allow", f"{tag}#{i}", 1) for i in range(n)
    ]


def _queued(svc: Consentune) -> int:
    with svc.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.ledger_queue)).scalar_one())


def test_an_append_is_queued_and_integrated_later_with_consecutive_sequences(svc: Consentune) -> None:
    start = svc.ledger.size
    tickets = [svc.ledger.append(_records(n, tag=f"t{k}")) for k, n in enumerate((3, 1, 250, 7))]
    assert svc.ledger.integrated_size == start  # acknowledged, not yet integrated
    assert _queued(svc) == 4
    ranges = [svc.ledger.sequences(t) for t in tickets]
    assert _queued(svc) == 0
    assert ranges == [
        range(start, start + 3),
        range(start + 3, start + 4),
        range(start + 4, start + 254),
        range(start + 254, start + 261),
    ]
    for k, (ticket, seqs) in enumerate(zip(tickets, ranges, strict=True)):
        assert [e.reason for e in svc.ledger.entries(list(seqs))] == [f"t{k}#{i}" for i in range(ticket.count)]
    cp = svc.store.latest_checkpoint()
    assert cp is not None and cp.size == start + 261  # the integrator signed the new head once


def test_an_append_inside_the_callers_transaction_commits_and_rolls_back_with_it(svc: Consentune) -> None:
    start = svc.ledger.size
    # a unit of work as the storage layer opens one (on SQLite: BEGIN IMMEDIATE; plain connections autocommit)
    with write_transaction(svc.store.engine) as conn:
        kept = svc.ledger.append(_records(2, tag="kept"), unit=conn)
    lost: LedgerTicket | None = None
    with pytest.raises(RuntimeError), write_transaction(svc.store.engine) as conn:
        lost = svc.ledger.append(_records(5, tag="lost"), unit=conn)
        raise RuntimeError("the caller's state change failed")
    assert svc.ledger.sequences(kept) == range(start, start + 2)
    assert svc.ledger.size == start + 2
    assert lost is not None
    with pytest.raises(NotFound):
        svc.ledger.sequences(lost)


def test_a_bad_record_fails_its_caller_and_never_reaches_the_queue(svc: Consentune) -> None:
    svc.ledger.integrate()
    with pytest.raises(InvalidInput):
        svc.ledger.append([UsageRecord("service:seq", "read-audio", None, None, "maybe", "not a decision")])
    with pytest.raises(InvalidInput):
        svc.ledger.append([UsageRecord("service:seq", "read-audio", None, None, "allow", "x" * 70_000)])
    assert _queued(svc) == 0


def test_concurrent_integrators_from_several_instances_make_one_gap_free_log(svc: Consentune) -> None:
    others = [open_service(svc.settings) for _ in range(2)]
    start = svc.ledger.size
    tickets: list[LedgerTicket] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def integrate_forever(instance: Consentune) -> None:
        try:
            while not stop.is_set():
                instance.ledger.integrate(wait=bool(random.getrandbits(1)))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=integrate_forever, args=(o,)) for o in others]
    for thread in threads:
        thread.start()
    try:
        for k in range(40):
            tickets.append(svc.ledger.append(_records(1 + k % 9, tag=f"c{k}")))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for other in others:
            other.close()
    assert not errors, errors
    claimed = sorted(seq for t in tickets for seq in svc.ledger.sequences(t))
    assert claimed == list(range(start, svc.ledger.size))
    report = svc.ledger.audit()
    assert report.ok, report.problems


_INTEGRATOR = """
import sys
from pathlib import Path
from consentune.config import Settings
from consentune.service import open_service
svc = open_service(Settings(home=Path(sys.argv[1]), database_url=sys.argv[2], ledger_integrate_batch=500))
print("ready", flush=True)
while True:
    svc.ledger.integrate()
"""

_APPENDER = """
import sys
from pathlib import Path
from consentune.config import Settings
from consentune.ledger.log import UsageRecord
from consentune.service import open_service
from consentune.storage.engine import write_transaction
svc = open_service(Settings(home=Path(sys.argv[1]), database_url=sys.argv[2]))
import time
for k in range(300):
    time.sleep(0.01)
    ticket = svc.ledger.append(
        [UsageRecord("service:crash", "read-audio", "recommend", "trk_c", "allow", f"a{k}#{i}", 1) for i in range(50)]
    )
    print(ticket.batch_id, k, flush=True)  # printed only once the append returned: acknowledged
time.sleep(3600)
"""


def _spawn(script: str, settings: Settings) -> subprocess.Popen[str]:
    env = dict(os.environ)
    source = str(Path(consentune.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([source, env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-c", script, str(settings.home), settings.database_url],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for_growth(svc: Consentune, above: int, *, timeout_s: float = 120.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        size = svc.ledger.integrated_size
        if size > above:
            return size
        time.sleep(0.02)
    raise AssertionError(f"the integrator made no progress past {above} in {timeout_s} s")


def test_sigkill_mid_integration_loses_no_acknowledged_entry(svc: Consentune) -> None:
    rng = random.Random(13)
    backlog = [svc.ledger.append(_records(200, tag=f"pre{k}")) for k in range(60)]  # 12,000 queued entries
    appender = _spawn(_APPENDER, svc.settings)
    kills = 0
    try:
        for _ in range(3):
            integrator = _spawn(_INTEGRATOR, svc.settings)
            assert integrator.stdout is not None and integrator.stdout.readline().strip() == "ready"
            before = svc.ledger.integrated_size
            _wait_for_growth(svc, before)
            time.sleep(rng.uniform(0.0, 0.15))  # batches of 500 take a while: land inside one
            integrator.send_signal(signal.SIGKILL)
            integrator.wait()
            integrator.stdout.close()
            kills += 1
            assert _queued(svc) > 0  # it died with work left, not after draining the queue
    finally:
        appender.send_signal(signal.SIGKILL)
        appender.wait()
    assert kills == 3
    assert appender.stdout is not None
    acknowledged = [line.split() for line in appender.stdout.read().splitlines() if line.strip()]
    appender.stdout.close()
    assert len(acknowledged) > 0
    restarted = open_service(svc.settings)  # "after restart": a fresh process view of the same data
    try:
        for ticket in backlog:
            seqs = restarted.ledger.sequences(ticket)
            assert len(seqs) == 200
        for batch_id, k in acknowledged:
            seqs = restarted.ledger.sequences(LedgerTicket(int(batch_id), 50))
            assert [e.reason for e in restarted.ledger.entries(list(seqs))] == [f"a{k}#{i}" for i in range(50)]
        size = restarted.ledger.size
        with restarted.store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(tables.ledger_entries)).scalar_one() == size
        full = restarted.ledger.audit(full=True)
        assert full.ok, full.problems
        incremental = restarted.ledger.audit()
        assert incremental.ok, incremental.problems
        assert incremental.size == size
    finally:
        restarted.close()


def test_the_api_integrates_in_the_background_and_publishes(svc: Consentune) -> None:
    from fastapi.testclient import TestClient

    from consentune.api import create_app

    svc.ledger.integrate()
    start = svc.ledger.integrated_size
    with TestClient(create_app(svc, integrate_interval_s=0.05)) as client:
        svc.ledger.append(_records(30, tag="bg"))
        deadline = time.monotonic() + 60
        while svc.ledger.integrated_size < start + 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert svc.ledger.integrated_size == start + 30  # nobody asked for an index: the loop integrated
        published = client.get("/v1/ledger/tiles/checkpoint")
        while f"\n{start + 30}\n" not in published.text and time.monotonic() < deadline:
            time.sleep(0.05)
            published = client.get("/v1/ledger/tiles/checkpoint")
        assert f"\n{start + 30}\n" in published.text
