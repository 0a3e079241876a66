"""Create engines for SQLite (WAL, embedded default) or PostgreSQL, and run migrations.

SQLite transactions are issued by us, not by the driver: plain reads run
in autocommit (each statement sees the latest commit), reads that must see
one snapshot open a deferred ``BEGIN`` (ended when the connection is
released), and writes open ``BEGIN IMMEDIATE`` so a writer queues for the
write lock at the start (under the busy timeout) instead of failing with
"database is locked" when it upgrades a read lock half-way through.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from consentune.errors import StorageError

WRITE_OPTION = "consentune_write"  # execution option: this connection opens a write transaction
SNAPSHOT_OPTION = "consentune_snapshot"  # execution option: this connection's reads share one snapshot
BUSY_TIMEOUT_MS = 30_000
WAL_SIZE_LIMIT = 64 * 2**20  # bytes the WAL file is truncated back to after a checkpoint
_MIGRATION_LOCK = "consentune-migrate"


def make_engine(url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``url``; SQLite files get WAL, foreign keys and a busy timeout (milliseconds)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StorageError(
            f"cannot parse database URL {url!r}",
            hint="use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        return _fork_safe(_sqlite_engine(url, parsed.database, busy_timeout_ms))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        return _fork_safe(create_engine(parsed, pool_pre_ping=True, future=True))
    except NoSuchModuleError:
        raise StorageError(f"no driver for {parsed.drivername}", hint="pip install 'consentune[postgres]'") from None
    except ModuleNotFoundError as exc:
        raise StorageError(f"database driver missing: {exc.name}", hint="pip install 'consentune[postgres]'") from None


def _fork_safe(engine: Engine) -> Engine:
    """A forked child drops the pooled connections it inherited (without closing the parent's) and opens its own.

    A SQLite handle or a PostgreSQL socket used from two processes at once
    corrupts both sides' view, e.g. a read transaction the parent holds.
    """
    ref = weakref.ref(engine)

    def _after_fork_in_child() -> None:
        inherited = ref()
        if inherited is not None:
            inherited.dispose(close=False)

    os.register_at_fork(after_in_child=_after_fork_in_child)
    return engine


def _sqlite_engine(url: str, database: str | None, busy_timeout_ms: int) -> Engine:
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the driver never begins or commits on its own; the "begin" hook below does
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000, "isolation_level": None})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get(WRITE_OPTION, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif options.get(SNAPSHOT_OPTION, False):
            conn.exec_driver_sql("BEGIN")

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_busy(exc: OperationalError) -> bool:
    """SQLite's "database is locked" / "busy": the write lock was not free within the busy timeout."""
    text_ = str(exc.orig).lower()
    return "locked" in text_ or "busy" in text_


@contextmanager
def write_transaction(engine: Engine, *, attempts: int = 3) -> Iterator[Connection]:
    """One write transaction, committed on success and rolled back (connection released) on any error.

    On SQLite it starts with ``BEGIN IMMEDIATE``; if the write lock stays
    taken past the busy timeout the start is retried (``attempts`` in all),
    and a database still busy after that is a typed :class:`StorageError`.
    """
    conn = _begin_write(engine, attempts)
    try:
        yield conn
        conn.commit()
    except OperationalError as exc:
        conn.rollback()
        if is_sqlite(engine) and is_busy(exc):
            raise _busy_error() from None
        raise
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def _begin_write(engine: Engine, attempts: int) -> Connection:
    for attempt in range(1, attempts + 1):
        conn = engine.connect().execution_options(**{WRITE_OPTION: True})
        try:
            conn.begin()
            return conn
        except OperationalError as exc:
            conn.close()
            if not (is_sqlite(engine) and is_busy(exc)):
                raise
            if attempt == attempts:
                raise _busy_error() from None
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _busy_error() -> StorageError:
    return StorageError(
        "the database stayed busy with other writers",
        hint="retry in a moment; for many concurrent writers use PostgreSQL (CONSENTUNE_DATABASE_URL)",
    )


def checkpoint_wal(engine: Engine, *, wait_ms: int = 1000) -> tuple[int, int] | None:
    """Copy the SQLite WAL into the database and truncate it; None on PostgreSQL.

    Waits at most ``wait_ms`` for readers and writers; returns (frames in the
    WAL, frames checkpointed) as SQLite reports them.
    """
    if not is_sqlite(engine):
        return None
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        (previous,) = cursor.execute("PRAGMA busy_timeout").fetchone()
        cursor.execute(f"PRAGMA busy_timeout={wait_ms}")
        row = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.execute(f"PRAGMA busy_timeout={int(previous)}")
        cursor.close()
    finally:
        raw.close()
    return int(row[1]), int(row[2])


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (idempotent, safe with several workers at once).

    The whole upgrade is one transaction holding a lock: on PostgreSQL an
    advisory lock for the current schema, on SQLite the write lock.  A worker
    that waited finds the schema at head and does nothing.
    """
    config = Config()
    location = resources.files("consentune.storage") / "migrations"
    config.set_main_option("script_location", str(location))
    try:
        with write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:name || current_schema()))"),
                    {"name": _MIGRATION_LOCK},
                )
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise StorageError(
            f"cannot reach or migrate the database: {exc.orig}",
            hint="check CONSENTUNE_DATABASE_URL and that the server is running",
        ) from None


__all__ = [
    "SNAPSHOT_OPTION",
    "WRITE_OPTION",
    "checkpoint_wal",
    "is_busy",
    "make_engine",
    "migrate",
    "write_transaction",
]
