"""The shield's shared-state port: versioned cells, compare-and-set in one step over a few keys.

Everything the shield must agree on across workers (detector subjects,
active streams, lockdown links, rate-limit buckets on the file backend)
is a small blob under a key.  A worker loads the cells an event touches,
computes in memory, and commits them only if none changed meanwhile
(versions), else it loads again.  Every cell expires ``ttl_s`` after its
last write, so memory is bounded by what was active within that time.

Backends: :class:`MemoryCells` (one process: tests and single-worker
tools), ``sharedstate.RedisCells`` (workers on many hosts) and
``sharedstate.SqliteCells`` (workers on one host, one file).

Two optional parts of the port keep a listener request at two round trips:
a commit may carry counter increments (:meth:`SharedCells.commit` with
``counts``: applied only with the writes, so a lost race counts nothing),
and a backend that also holds the rate-limit buckets may read cells and
take tokens in one step (:class:`ReadsAndTakes`).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Cell:
    """``version`` counts commits to the key (0: never written or gone); ``data`` is None when absent."""

    version: int
    data: bytes | None


@dataclass(frozen=True)
class CellWrite:
    """Set ``key`` to ``data`` (None deletes it) if its version is still ``expected`` (None: whatever it is)."""

    key: str
    expected: int | None
    data: bytes | None


@dataclass(frozen=True)
class Take:
    """Take ``cost`` tokens from rate-limit bucket ``key`` (refilling ``per_second`` up to ``burst``)."""

    key: str
    per_second: float
    burst: float
    cost: float = 1.0


class SharedCells(Protocol):
    def load(self, keys: Sequence[str]) -> list[Cell]:
        """The current cells of ``keys``, in order, in one round trip."""
        ...

    def commit(self, writes: Sequence[CellWrite], *, ttl_s: float, counts: Mapping[str, int] | None = None) -> bool:
        """Apply all ``writes`` or none: False when any expected version no longer holds.  ``counts``: add
        these to the store's counters, together with the writes (nothing when the commit fails)."""
        ...

    def counters(self) -> dict[str, int]:
        """Every counter commits have added to, deployment-wide (counters never expire)."""
        ...


@runtime_checkable
class ReadsAndTakes(Protocol):
    """A backend holding both the cells and the rate limiter's buckets: a listener request's reads and its
    rate limits in one round trip."""

    def load_and_take(
        self, keys: Sequence[str], *, blocks: int, takes: Sequence[Take], now: float
    ) -> tuple[list[Cell], list[tuple[bool, float]] | None]:
        """The cells of ``keys``; then, unless one of the first ``blocks`` cells holds a live block record
        (``"<record id> <until>"`` with ``now < until``: :mod:`~consentune.shield.blockboard`'s format),
        take ``takes`` in order up to the first one refused, as the rate limiter would, and return their
        (admitted, retry after seconds).  None: blocked, nothing taken."""
        ...


class MemoryCells:
    """Cells in one process (a lock, a dict and wall-clock expiry)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._cells: dict[str, tuple[int, bytes | None, float]] = {}
        self._counts: Counter[str] = Counter()
        self._clock = clock
        self._lock = threading.Lock()

    def load(self, keys: Sequence[str]) -> list[Cell]:
        now = self._clock()
        with self._lock:
            return [self._get(key, now) for key in keys]

    def _get(self, key: str, now: float) -> Cell:
        version, data, expires = self._cells.get(key, (0, None, 0.0))
        return Cell(version, data if expires > now else None)

    def commit(self, writes: Sequence[CellWrite], *, ttl_s: float, counts: Mapping[str, int] | None = None) -> bool:
        now = self._clock()
        with self._lock:
            for w in writes:
                if w.expected is not None and self._cells.get(w.key, (0, None, 0.0))[0] != w.expected:
                    return False
            for w in writes:
                version = self._cells.get(w.key, (0, None, 0.0))[0] + 1
                self._cells[w.key] = (version, w.data, now + ttl_s)
            self._counts.update({name: n for name, n in (counts or {}).items() if n})
        return True

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class PrefetchCells:
    """Cells read ahead: one round trip fetches every cell a request will read, each served once from it.

    A listener request reads its block cells, then its detector subjects;
    fetched together they cost one round trip instead of two.  A prefetched
    cell may be a moment old when used, which compare-and-set makes safe: a
    commit against a changed cell fails and the caller loads again (from the
    store: each prefetched cell is served once, and a commit drops its keys).
    Per thread, as each request runs on one.
    """

    def __init__(self, inner: SharedCells, *, takes: bool = True) -> None:
        """``takes``: ``inner`` holds the buckets of the deployment's rate limiter (take tokens with reads)."""
        self._inner = inner
        self._fused = inner if takes and isinstance(inner, ReadsAndTakes) else None
        self._local = threading.local()

    @contextlib.contextmanager
    def prefetched(
        self, keys: Sequence[str], *, blocks: int = 0, takes: Sequence[Take] = (), now: float = 0.0
    ) -> Iterator[list[tuple[bool, float]] | None]:
        """Read ``keys`` ahead; with ``takes`` and a backend that :class:`ReadsAndTakes`, take the tokens in
        the same round trip and yield the results (None: not taken, the caller asks its rate limiter)."""
        taken = None
        if takes and self._fused is not None:
            cells, taken = self._fused.load_and_take(keys, blocks=blocks, takes=takes, now=now)
        else:
            cells = self._inner.load(keys)
        self._local.ahead = dict(zip(keys, cells, strict=True))
        try:
            yield taken
        finally:
            self._local.ahead = {}

    def load(self, keys: Sequence[str]) -> list[Cell]:
        ahead: dict[str, Cell] = getattr(self._local, "ahead", {})
        if ahead and all(key in ahead for key in keys):
            return [ahead.pop(key) for key in keys]
        return self._inner.load(keys)

    def commit(self, writes: Sequence[CellWrite], *, ttl_s: float, counts: Mapping[str, int] | None = None) -> bool:
        ahead: dict[str, Cell] = getattr(self._local, "ahead", {})
        for w in writes:
            ahead.pop(w.key, None)
        return self._inner.commit(writes, ttl_s=ttl_s, counts=counts)

    def counters(self) -> dict[str, int]:
        return self._inner.counters()


def update_cell(
    cells: SharedCells, key: str, change: Callable[[bytes | None], bytes | None], *, ttl_s: float, attempts: int = 8
) -> bytes | None:
    """Read-modify-write one cell; after ``attempts`` lost races the last write wins.  Returns what was written."""
    for attempt in range(attempts):
        (cell,) = cells.load([key])
        data = change(cell.data)
        expected = None if attempt == attempts - 1 else cell.version
        if cells.commit([CellWrite(key, expected, data)], ttl_s=ttl_s):
            return data
    raise AssertionError("unreachable: the last attempt commits unconditionally")


__all__ = ["Cell", "CellWrite", "MemoryCells", "PrefetchCells", "ReadsAndTakes", "SharedCells", "Take", "update_cell"]
