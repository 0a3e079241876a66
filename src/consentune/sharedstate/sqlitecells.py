"""The shield's shared cells in one SQLite file: ``serve --workers N`` on one host without Redis.

Every worker opens the same file (WAL, no fsync per commit: this is
evidence that may be lost with the machine, not records).  A commit is one
``BEGIN IMMEDIATE`` transaction that checks versions and writes, so workers
never both win a race.  Rows past their expiry read as absent and are
purged every few thousand commits.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from consentune.errors import StorageError
from consentune.shield.cells import Cell, CellWrite

PURGE_EVERY = 4096
_SCHEMA = "CREATE TABLE IF NOT EXISTS cells (key TEXT PRIMARY KEY, version INTEGER NOT NULL, data BLOB, expires REAL)"


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
                db.execute(_SCHEMA)
            except sqlite3.Error as exc:
                raise StorageError(
                    f"cannot open the shield state file {self._path.name}: {exc}",
                    hint="CONSENTUNE_HOME must be a writable local folder (not a network share)",
                ) from None
            self._local.db = db
        return db

    def load(self, keys: Sequence[str]) -> list[Cell]:
        marks = ",".join("?" * len(keys))
        rows = self._db().execute(f"SELECT key, version, data, expires FROM cells WHERE key IN ({marks})", list(keys))
        now = self._clock()
        found = {key: Cell(version, data if expires > now else None) for key, version, data, expires in rows}
        return [found.get(key, Cell(0, None)) for key in keys]

    def commit(self, writes: Sequence[CellWrite], *, ttl_s: float) -> bool:
        db = self._db()
        now = self._clock()
        db.execute("BEGIN IMMEDIATE")
        try:
            versions = {w.key: self._version(db, w.key) for w in writes}
            if any(w.expected is not None and versions[w.key] != w.expected for w in writes):
                db.execute("ROLLBACK")
                return False
            db.executemany(
                "INSERT INTO cells (key, version, data, expires) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE "
                "SET version = excluded.version, data = excluded.data, expires = excluded.expires",
                [(w.key, versions[w.key] + 1, w.data, now + ttl_s) for w in writes],
            )
            self._commits += 1
            if self._commits % PURGE_EVERY == 0:
                db.execute("DELETE FROM cells WHERE expires < ?", (now,))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return True

    @staticmethod
    def _version(db: sqlite3.Connection, key: str) -> int:
        row = db.execute("SELECT version FROM cells WHERE key = ?", (key,)).fetchone()
        return 0 if row is None else int(row[0])


__all__ = ["SqliteCells"]
