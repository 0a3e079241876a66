"""One behaviour suite for every rate-limiter backend (memory and a real Redis)."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator

import pytest

from consentune.errors import InvalidInput
from consentune.sharedstate.ratelimit import RedisRateLimiter
from consentune.shield.ratelimit import MemoryRateLimiter, Rate, RateLimiter

REDIS_URL = os.environ.get("CONSENTUNE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI") == "true"
T0 = 1_700_000_000.25


@pytest.fixture
def redis_limiter() -> Iterator[RedisRateLimiter]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis at {REDIS_URL} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"ctn:test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter(REDIS_URL, prefix=prefix)
    yield limiter
    limiter.close()
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "memory":
        return MemoryRateLimiter()
    backend: RateLimiter = request.getfixturevalue("redis_limiter")
    return backend


def test_burst_then_refill(limiter: RateLimiter) -> None:
    rate = Rate(per_second=2.0, burst=5.0)
    assert [limiter.hit("k", rate, now=T0)[0] for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.hit("k", rate, now=T0 + 0.5) == (True, 0.0)  # one token back after 0.5 s
    assert not limiter.hit("k", rate, now=T0 + 0.5)[0]
    assert [limiter.hit("k", rate, now=T0 + 100)[0] for _ in range(6)] == [True] * 5 + [False]


def test_retry_after_is_the_time_until_enough_tokens(limiter: RateLimiter) -> None:
    rate = Rate(per_second=4.0, burst=2.0)
    limiter.hit("k", rate, now=T0)
    limiter.hit("k", rate, now=T0)
    allowed, retry = limiter.hit("k", rate, now=T0 + 0.125)
    assert not allowed and retry == pytest.approx(0.125)
    assert limiter.hit("k", rate, now=T0 + 0.125 + retry)[0]


def test_keys_are_independent(limiter: RateLimiter) -> None:
    rate = Rate(per_second=1.0, burst=1.0)
    assert limiter.hit("a", rate, now=T0)[0]
    assert not limiter.hit("a", rate, now=T0)[0]
    assert limiter.hit("b", rate, now=T0)[0]


def test_cost_greater_than_one(limiter: RateLimiter) -> None:
    rate = Rate(per_second=1.0, burst=10.0)
    assert limiter.hit("k", rate, now=T0, cost=6)[0]
    allowed, retry = limiter.hit("k", rate, now=T0, cost=6)
    assert not allowed and retry == pytest.approx(2.0)
    assert limiter.hit("k", rate, now=T0, cost=4)[0]


def test_clock_going_backwards_refills_nothing(limiter: RateLimiter) -> None:
    rate = Rate(per_second=1.0, burst=1.0)
    assert limiter.hit("k", rate, now=T0)[0]
    assert not limiter.hit("k", rate, now=T0 - 50)[0]
    assert limiter.hit("k", rate, now=T0 + 1)[0]


def test_concurrent_hits_never_over_admit(limiter: RateLimiter) -> None:
    rate = Rate(per_second=0.001, burst=40.0)
    admitted: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        results = [limiter.hit("shared", rate, now=T0)[0] for _ in range(25)]
        with lock:
            admitted.extend(results)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 200 and sum(admitted) == 40


def test_cost_outside_the_bucket_is_rejected(limiter: RateLimiter) -> None:
    with pytest.raises(InvalidInput):
        limiter.hit("k", Rate(per_second=1.0, burst=2.0), now=T0, cost=3)
    with pytest.raises(InvalidInput):
        limiter.hit("k", Rate(per_second=1.0, burst=2.0), now=T0, cost=0)


def test_bad_rates_are_rejected() -> None:
    for per_second, burst in [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0), (float("inf"), 1.0)]:
        with pytest.raises(InvalidInput):
            Rate(per_second=per_second, burst=burst)


def test_memory_limiter_stays_bounded_and_forgets_least_recent() -> None:
    limiter = MemoryRateLimiter(max_keys=100)
    rate = Rate(per_second=1.0, burst=1.0)
    for i in range(1000):
        limiter.hit(f"k{i}", rate, now=T0)
    assert len(limiter) == 100
    assert not limiter.hit("k999", rate, now=T0)[0]  # recent: remembered
    assert limiter.hit("k0", rate, now=T0)[0]  # evicted: starts full again


def test_redis_keys_expire_once_full(redis_limiter: RedisRateLimiter) -> None:
    import redis

    redis_limiter.hit("exp", Rate(per_second=1.0, burst=3.0), now=T0, cost=2)
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match="*exp"))
    ttl = [client.ttl(key) for key in keys if key.decode().endswith(":exp")]
    client.close()
    assert ttl and all(1 <= t <= 3 for t in ttl)


def test_redis_script_reloads_after_script_flush(redis_limiter: RedisRateLimiter) -> None:
    import redis

    rate = Rate(per_second=1.0, burst=2.0)
    assert redis_limiter.hit("f", rate, now=T0)[0]
    client = redis.Redis.from_url(REDIS_URL)
    client.script_flush()
    client.close()
    assert redis_limiter.hit("f", rate, now=T0)[0]
    assert not redis_limiter.hit("f", rate, now=T0)[0]
