"""Newcomer budget counters shared by two workers: two counter instances over one database or one Redis.

The same behaviour suite runs on every backend (SQLite, PostgreSQL, Redis) and on the
in-process counter as the reference.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from consentune.errors import NewcomerLimit
from consentune.sharedstate import connect
from consentune.sharedstate.budget import RedisBudgetCounter
from consentune.shield.budget import HOUR_S, BudgetCaps, BudgetCounter, Charge, MemoryBudgetCounter, NewcomerBudget
from consentune.storage import make_engine, migrate
from consentune.storage.budget_sql import SqlBudgetCounter
from tests.sharedstate.conftest import SharedRedis

T0 = 1_800_000_000.0 - 1_800_000_000.0 % HOUR_S
HOUR = int(T0 // HOUR_S)


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[BudgetCounter, BudgetCounter]]:
    """Two counters that must behave as one: the same memory object, or two clients of one store."""
    if request.param == "memory":
        shared = MemoryBudgetCounter()
        yield shared, shared
        return
    if request.param == "redis":
        redis_info: SharedRedis = request.getfixturevalue("shared_redis")
        clients = [connect(redis_info.url) for _ in range(2)]
        yield (
            RedisBudgetCounter(clients[0], prefix=redis_info.prefix),
            RedisBudgetCounter(clients[1], prefix=redis_info.prefix),
        )
        for c in clients:
            c.close()
        return
    url = f"sqlite:///{tmp_path}/budget.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engines: list[Engine] = [make_engine(url), make_engine(url)]
    migrate(engines[0])
    yield SqlBudgetCounter(engines[0]), SqlBudgetCounter(engines[1])
    for e in engines:
        e.dispose()


def test_a_cap_holds_across_two_workers(workers: tuple[BudgetCounter, BudgetCounter]) -> None:
    one, two = workers
    caps = BudgetCaps(identity_s=10_000, address_s=900, prefix_s=10_000)
    a, b = NewcomerBudget(one, caps), NewcomerBudget(two, caps)
    served = 0.0
    for i in range(40):  # accounts alternate between the two workers, all at one address
        worker = a if i % 2 else b
        try:
            worker.serve(identity=f"acc{i}", address="198.51.100.1", track=f"t{i}", upto_s=100.0, now=T0 + i)
            served += 100.0
        except NewcomerLimit:
            pass
    assert served == 900.0


def test_distinct_audio_is_shared_a_track_charged_on_one_worker_is_free_on_the_other(
    workers: tuple[BudgetCounter, BudgetCounter],
) -> None:
    one, two = workers
    charge = [Charge("addr:x", 500.0, HOUR)]
    assert one.charge(charge, track="t1", upto_s=300.0)
    assert two.charge(charge, track="t1", upto_s=300.0)  # already charged: free
    assert two.charge(charge, track="t1", upto_s=450.0)  # 150 more
    assert not one.charge(charge, track="t2", upto_s=60.0)  # 450 + 60 > 500
    assert one.charge(charge, track="t2", upto_s=50.0)  # exactly 500
    assert one.charge([Charge("addr:x", 500.0, HOUR + 1)], track="t3", upto_s=500.0)  # a new hour


def test_a_refusal_in_one_scope_charges_no_other(workers: tuple[BudgetCounter, BudgetCounter]) -> None:
    one, two = workers
    assert one.charge([Charge("addr:y", 100.0, HOUR)], track="t1", upto_s=100.0)
    assert not two.charge([Charge("id:z", 1000.0, HOUR), Charge("addr:y", 100.0, HOUR)], track="t2", upto_s=50.0)
    assert one.charge([Charge("id:z", 1000.0, HOUR)], track="t3", upto_s=1000.0)


def test_vouchers_are_seen_by_both_workers_and_expire_after_a_day(workers: tuple[BudgetCounter, BudgetCounter]) -> None:
    one, two = workers
    one.vouch(["addr:campus", "net:campus"], member="acc_a", now=T0)
    two.vouch(["addr:campus"], member="acc_b", now=T0 + 60)
    one.vouch(["addr:campus"], member="acc_a", now=T0 + 120)
    assert two.vouchers(["addr:campus", "net:campus", "addr:other"], now=T0 + 180) == [2, 1, 0]
    assert one.vouchers(["addr:campus"], now=T0 + 86400 + 61) == [1]  # acc_b's day is over, acc_a's is not


def test_concurrent_workers_never_overspend(workers: tuple[BudgetCounter, BudgetCounter]) -> None:
    one, two = workers
    charge = [Charge("addr:race", 1000.0, HOUR)]
    granted: list[int] = []
    lock = threading.Lock()

    def run(counter: BudgetCounter, offset: int) -> None:
        for i in range(15):
            if counter.charge(charge, track=f"t{offset + i}", upto_s=100.0):
                with lock:
                    granted.append(offset + i)

    threads = [threading.Thread(target=run, args=(c, n * 100)) for n, c in enumerate((one, two, one, two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 10  # 60 attempts of 100 s against 1000 s: exactly ten win


def test_hour_and_day_windows_of_one_scope_are_counted_apart(workers: tuple[BudgetCounter, BudgetCounter]) -> None:
    one, two = workers
    day = HOUR - HOUR % 24

    def both(hour: int) -> list[Charge]:
        return [Charge("addr:w", 300.0, hour), Charge("addr:w|day", 500.0, day, ttl_s=25 * HOUR_S)]

    assert one.charge(both(HOUR), track="t1", upto_s=300.0)
    assert not two.charge(both(HOUR), track="t2", upto_s=1.0)  # the hour is full
    assert two.charge(both(HOUR + 1), track="t2", upto_s=200.0)  # next hour; the day holds 500 in all
    assert not one.charge(both(HOUR + 2), track="t3", upto_s=1.0)  # the day is full
