"""Token-bucket rate limits behind one protocol: in memory (one process) or in Redis (many workers).

A bucket holds at most ``burst`` tokens and refills at ``per_second``; a hit
of ``cost`` tokens is admitted when that many are there.  Time is the
caller's ``now`` (float seconds), so simulated clocks work; a ``now`` older
than the bucket's last update refills nothing.  A full bucket carries no
information, so both backends may forget it: memory evicts the least
recently used buckets beyond ``max_keys``, Redis lets a key expire once it
would have refilled.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from consentune.errors import InvalidInput, StorageError

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True)
class Rate:
    """``per_second`` tokens refill each second, up to ``burst`` tokens."""

    per_second: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)):
            raise InvalidInput(f"rate per_second={self.per_second!r} must be positive", hint="e.g. Rate(2.0, 20.0)")
        if not (self.burst >= 1 and math.isfinite(self.burst)):
            raise InvalidInput(f"rate burst={self.burst!r} must be at least 1", hint="e.g. Rate(2.0, 20.0)")


class RateLimiter(Protocol):
    def hit(self, key: str, rate: Rate, *, now: float, cost: float = 1.0) -> tuple[bool, float]:
        """Take ``cost`` tokens from ``key``'s bucket: (admitted, seconds until it would be admitted)."""
        ...


def _check_cost(rate: Rate, cost: float) -> None:
    if not 0 < cost <= rate.burst:
        raise InvalidInput(
            f"cost {cost!r} is outside (0, burst={rate.burst!r}]",
            hint="a bucket can never hold more than its burst; raise the burst or split the cost",
        )


def _take(tokens: float, last: float, rate: Rate, now: float, cost: float) -> tuple[float, float, bool, float]:
    """Refill then take: (tokens, last, admitted, retry_after_s).  Mirrors the Lua script below."""
    if now > last:
        tokens = min(rate.burst, tokens + (now - last) * rate.per_second)
        last = now
    if tokens >= cost:
        return tokens - cost, last, True, 0.0
    return tokens, last, False, (cost - tokens) / rate.per_second


class MemoryRateLimiter:
    """Thread-safe buckets in one process; at most ``max_keys`` buckets, least recently used evicted."""

    def __init__(self, max_keys: int = 1_000_000) -> None:
        if max_keys < 1:
            raise InvalidInput(f"max_keys={max_keys!r} must be at least 1", hint="use the default 1_000_000")
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, rate: Rate, *, now: float, cost: float = 1.0) -> tuple[bool, float]:
        _check_cost(rate, cost)
        with self._lock:
            tokens, last = self._buckets.pop(key, (rate.burst, now))
            tokens, last, admitted, retry = _take(tokens, last, rate, now, cost)
            self._buckets[key] = (tokens, last)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return admitted, retry

    def __len__(self) -> int:
        return len(self._buckets)


# KEYS[1] bucket; ARGV: per_second, burst, now, cost.  Returns {admitted, retry_after as string}
# (Redis truncates Lua numbers to integers, hence the string).
_LUA_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then
  tokens = burst
  last = now
end
if now > last then
  tokens = math.min(burst, tokens + (now - last) * rate)
  last = now
end
local admitted = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  admitted = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 'ts', string.format('%.17g', last))
redis.call('EXPIRE', KEYS[1], math.ceil((burst - tokens) / rate) + 1)
return {admitted, string.format('%.17g', retry)}
"""


class RedisRateLimiter:
    """Buckets in Redis, updated atomically by one Lua script (EVALSHA, falling back to EVAL).

    A key expires once its bucket would be full again, measured in Redis's
    own seconds; with a simulated clock that runs slower than real time a
    bucket may be forgotten early (and so refill early).
    """

    def __init__(self, url: str, *, prefix: str = "ctn:rl:") -> None:
        try:
            import redis
        except ImportError:
            raise InvalidInput(
                "the Redis rate limiter needs the 'redis' package",
                hint="pip install 'consentune[redis]'",
            ) from None
        self._prefix = prefix
        self._errors: type[Exception] = redis.RedisError
        self._client: redis.Redis = redis.Redis.from_url(url)
        self._take = self._client.register_script(_LUA_TAKE)

    def hit(self, key: str, rate: Rate, *, now: float, cost: float = 1.0) -> tuple[bool, float]:
        _check_cost(rate, cost)
        args = [repr(float(v)) for v in (rate.per_second, rate.burst, now, cost)]
        try:
            admitted, retry = self._take(keys=[self._prefix + key], args=args)
        except self._errors as exc:
            raise StorageError(
                f"Redis rate limiter failed: {exc}", hint="check that Redis is running and reachable"
            ) from exc
        return bool(admitted), float(retry)

    def close(self) -> None:
        self._client.close()


__all__ = ["MemoryRateLimiter", "Rate", "RateLimiter", "RedisRateLimiter"]
