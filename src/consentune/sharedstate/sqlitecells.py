"""The shield's shared cells in one SQLite file: ``serve --workers N`` on one host without Redis.

Every worker opens the same file (WAL, no fsync per commit: this is
evidence that may be lost with the machine, not records).  A commit is one
``BEGIN IMMEDIATE`` transaction that checks versions and writes, so workers
never both win a race.  Rows past their expiry read as absent and are
purged every few thousand commits.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from consentune.errors import StorageError
from consentune.shield.cells import Cell, CellWrite, Take
from consentune.shield.ratelimit import BUCKET, Rate, take_from_cell

PURGE_EVERY = 4096
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, version INTEGER NOT NULL, data BLOB, expires REAL)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)",
)
_UPSERT = (
    "INSERT INTO cells (key, version, data, expires) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE "
    "SET version = excluded.version, data = excluded.data, expires = excluded.expires"
)


class SqliteCells:
    """:class:`~consentune.shield.cells.SharedCells` in ``path`` (one connection per thread)."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._local = threading.local()
        self._commits = 0
        self._db()  # create the file now, so a bad path fails at startup

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self._path, timeout=30.0, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=OFF")
                for statement in _SCHEMA:
                    db.execute(statement)
            except sqlite3.Error as exc:
                raise StorageError(
                    f"cannot open the shield state file {self._path.name}: {exc}",
                    hint="CONSENTUNE_HOME must be a writable local folder (not a network share)",
                ) from None
            self._local.db = db
        return db

    def load(self, keys: Sequence[str]) -> list[Cell]:
        return self._load(self._db(), keys, self._clock())

    @staticmethod
    def _load(db: sqlite3.Connection, keys: Sequence[str], now: float) -> list[Cell]:
        marks = ",".join("?" * len(keys))
        rows = db.execute(f"SELECT key, version, data, expires FROM cells WHERE key IN ({marks})", list(keys))
        found = {key: Cell(version, data if expires > now else None) for key, version, data, expires in rows}
        return [found.get(key, Cell(0, None)) for key in keys]

    def commit(self, writes: Sequence[CellWrite], *, ttl_s: float, counts: Mapping[str, int] | None = None) -> bool:
        with self._transaction() as (db, now):
            versions = {w.key: self._version(db, w.key) for w in writes}
            if any(w.expected is not None and versions[w.key] != w.expected for w in writes):
                return False
            db.executemany(_UPSERT, [(w.key, versions[w.key] + 1, w.data, now + ttl_s) for w in writes])
            if counts:
                db.executemany("INSERT INTO counters (name, n) VALUES (?, ?) ON CONFLICT (name) DO UPDATE "
                               "SET n = n + excluded.n", [(name, n) for name, n in counts.items() if n])  # fmt: skip
            self._commits += 1
            if self._commits % PURGE_EVERY == 0:
                db.execute("DELETE FROM cells WHERE expires < ?", (now,))
        return True

    def load_and_take(
        self, keys: Sequence[str], *, blocks: int, takes: Sequence[Take], now: float
    ) -> tuple[list[Cell], list[tuple[bool, float]] | None]:
        """:meth:`~consentune.shield.cells.ReadsAndTakes.load_and_take` in one write transaction, the
        buckets being :class:`~consentune.shield.ratelimit.CellRateLimiter`'s cells in this file."""
        with self._transaction() as (db, wall):
            cells = self._load(db, keys, wall)
            if any(c.data is not None and _live_block(c.data, now) for c in cells[:blocks]):
                return cells, None
            taken: list[tuple[bool, float]] = []
            for t in takes:
                key = BUCKET + t.key
                row = db.execute("SELECT version, data, expires FROM cells WHERE key = ?", (key,)).fetchone()
                version, stored = (0, None) if row is None else (int(row[0]), row[1] if row[2] > wall else None)
                data, ttl, admitted, retry = take_from_cell(stored, Rate(t.per_second, t.burst), now, t.cost)
                db.execute(_UPSERT, (key, version + 1, data, wall + ttl))
                taken.append((admitted, retry))
                if not admitted:
                    break
        return cells, taken

    def counters(self) -> dict[str, int]:
        return {name: int(n) for name, n in self._db().execute("SELECT name, n FROM counters")}

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[tuple[sqlite3.Connection, float]]:
        """One ``BEGIN IMMEDIATE`` transaction (workers never both win a race): committed when the block
        ends (having written nothing, when a version no longer held), rolled back on an exception."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db, self._clock()
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if db.in_transaction:
            db.execute("COMMIT")

    @staticmethod
    def _version(db: sqlite3.Connection, key: str) -> int:
        row = db.execute("SELECT version FROM cells WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])


def _live_block(data: bytes, now: float) -> bool:
    """A block record ("<record id> <until>", shield.blockboard) still in force at ``now``."""
    parts = data.split()
    try:
        return len(parts) != 2 or now < float(parts[1])
    except ValueError:
        return True  # unreadable: let the guard judge it (it then asks the rate limiter itself)


__all__ = ["SqliteCells"]
