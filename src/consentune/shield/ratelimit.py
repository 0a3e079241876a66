"""Token-bucket rate limits behind one protocol: in memory (one process), in shared cells (workers on one
host) or in Redis (``sharedstate.RedisRateLimiter``, workers anywhere).

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
from typing import Protocol

from consentune.errors import InvalidInput
from consentune.shield.cells import CellWrite, SharedCells


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


def check_cost(rate: Rate, cost: float) -> None:
    if not 0 < cost <= rate.burst:
        raise InvalidInput(
            f"cost {cost!r} is outside (0, burst={rate.burst!r}]",
            hint="a bucket can never hold more than its burst; raise the burst or split the cost",
        )


def take_tokens(tokens: float, last: float, rate: Rate, now: float, cost: float) -> tuple[float, float, bool, float]:
    """Refill then take: (tokens, last, admitted, retry_after_s).  ``sharedstate.ratelimit``'s Lua mirrors it."""
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
        check_cost(rate, cost)
        with self._lock:
            tokens, last = self._buckets.pop(key, (rate.burst, now))
            tokens, last, admitted, retry = take_tokens(tokens, last, rate, now, cost)
            self._buckets[key] = (tokens, last)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        return admitted, retry

    def __len__(self) -> int:
        return len(self._buckets)


class CellRateLimiter:
    """Buckets in shared cells (the file backend of ``serve --workers N``): read, take, compare-and-set.

    Exact while commits win; after ``attempts`` lost races on one bucket the
    last write wins (a burst may then be admitted slightly over its limit).
    """

    def __init__(self, cells: SharedCells, *, attempts: int = 8) -> None:
        self._cells = cells
        self._attempts = attempts

    def hit(self, key: str, rate: Rate, *, now: float, cost: float = 1.0) -> tuple[bool, float]:
        check_cost(rate, cost)
        for attempt in range(self._attempts):
            (cell,) = self._cells.load([BUCKET + key])
            data, ttl, admitted, retry = take_from_cell(cell.data, rate, now, cost)
            expected = None if attempt == self._attempts - 1 else cell.version
            if self._cells.commit([CellWrite(BUCKET + key, expected, data)], ttl_s=ttl):
                return admitted, retry
        raise AssertionError("unreachable: the last attempt commits unconditionally")


BUCKET = "rl:"  # the cell of a bucket: "<tokens> <last update>"


def take_from_cell(data: bytes | None, rate: Rate, now: float, cost: float) -> tuple[bytes, float, bool, float]:
    """One take on a bucket cell: (the cell's new data, its ttl in seconds, admitted, retry after seconds)."""
    tokens, last = rate.burst, now
    if data is not None:
        stored_tokens, stored_last = data.split()
        tokens, last = float(stored_tokens), float(stored_last)
    tokens, last, admitted, retry = take_tokens(tokens, last, rate, now, cost)
    ttl = math.ceil((rate.burst - tokens) / rate.per_second) + 1
    return f"{tokens!r} {last!r}".encode(), ttl, admitted, retry


__all__ = [
    "BUCKET",
    "CellRateLimiter",
    "MemoryRateLimiter",
    "Rate",
    "RateLimiter",
    "check_cost",
    "take_from_cell",
    "take_tokens",
]
