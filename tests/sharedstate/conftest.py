"""A private key prefix on the local Redis per test (other tests and engineers share the server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consentune.config import Settings

REDIS_URL = os.environ.get("CONSENTUNE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI") == "true"


@dataclass(frozen=True)
class SharedRedis:
    url: str
    prefix: str

    def settings(self, home: Path, database_url: str, **extra: object) -> Settings:
        return Settings(home=home, database_url=database_url, redis_url=self.url, redis_prefix=self.prefix,
                        identify_at_ingest=False, **extra)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture
def shared_redis() -> Iterator[SharedRedis]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        message = f"Redis at {REDIS_URL} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"ct-test:{uuid.uuid4().hex[:12]}:"
    yield SharedRedis(REDIS_URL, prefix)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)
    client.close()
