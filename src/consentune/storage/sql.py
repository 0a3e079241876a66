"""SqlStore: every storage port on one SQLAlchemy Core engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError, OperationalError

from consentune.consent.rules import ConsentRule
from consentune.consent.terms import EXPLANATIONS, Terms
from consentune.errors import Conflict, InvalidInput, LedgerError, StorageError
from consentune.fraud.detector import Alert
from consentune.ledger.sequencer import IntegrationPlan, QueuedBatch
from consentune.ports import (
    ApiKeyRecord,
    CatalogEntry,
    ConsentSnapshot,
    LedgerRow,
    ListenerSession,
    PlayRow,
    PlayWriter,
    PurgeJob,
    ShieldRecord,
    StoredCheckpoint,
    StoredMatch,
    StreamMark,
)
from consentune.storage import tables as t
from consentune.storage.engine import SNAPSHOT_OPTION, checkpoint_wal, write_transaction
from consentune.storage.timeutil import from_us, opt_from_us, opt_to_us, to_us
from consentune.types import Artist, ArtistId, PlayEvent, Purpose, PurposeKind, Role, Track, TrackId

_log = logging.getLogger(__name__)
# the open unit of work of each store (by id) in this thread or task; replaced, never mutated
_UNITS_OF_WORK: ContextVar[Mapping[int, Connection] | None] = ContextVar("consentune_units_of_work", default=None)
_CHUNK = 500  # bound IN-lists so huge batches stay within driver parameter limits


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_ENTRY_COLUMNS = ("seq", "data", "leaf_hash", "track_id", "purpose")
_BATCH_COLUMNS = ("id", "first_seq", "count")
_INTEGRATOR_LOCK = 0x636F6E73_6C656467  # "consledg": the PostgreSQL advisory lock key of the integrator
_NODE_COLUMNS = ("level", "idx", "hash")
_PLAY_COLUMNS = (
    "user_id",
    "track_id",
    "played_us",
    "ms_played",
    "ip",
    "device_id",
    "user_agent",
    "country",
    "account_created_us",
)


def _insert_sql(conn: Connection, table: str, columns: Sequence[str]) -> str:
    """A plain driver-level INSERT: the ledger hot path skips SQLAlchemy's per-row compilation."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def _copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Bulk-load ``rows`` with PostgreSQL COPY inside the connection's transaction."""
    if not rows:
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        write = copy.write_row
        for row in rows:
            write(row)


class SqlStore:
    """Implements :class:`consentune.ports.Store` on SQLite or PostgreSQL.

    Each method runs in its own transaction, unless it is called inside
    :meth:`transaction`: then it joins that one unit of work (reads included,
    so they see its uncommitted writes), which commits or rolls back whole.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- units of work ------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One unit of work for this thread or task; nested calls join the outer one."""
        if self._bound() is not None:
            yield
            return
        with write_transaction(self.engine) as conn:
            token = _UNITS_OF_WORK.set({**(_UNITS_OF_WORK.get() or {}), id(self): conn})
            try:
                yield
            finally:
                _UNITS_OF_WORK.reset(token)

    def in_transaction(self) -> bool:
        """Whether this thread or task is inside :meth:`transaction` now."""
        return self._bound() is not None

    def _bound(self) -> Connection | None:
        open_units = _UNITS_OF_WORK.get()
        return None if open_units is None else open_units.get(id(self))

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        bound = self._bound()
        if bound is not None:
            yield bound
            return
        with write_transaction(self.engine) as conn:
            yield conn

    @contextmanager
    def _read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A connection for reads; with ``snapshot`` all of them see one committed state (SQLite: ``BEGIN``)."""
        bound = self._bound()
        if bound is not None:
            yield bound
            return
        with self.engine.connect() as conn:
            if snapshot:
                conn.execution_options(**{SNAPSHOT_OPTION: True})
            yield conn

    @contextmanager
    def _attempt(self) -> Iterator[Connection]:
        """A write that may fail on a unique key and be retried: a savepoint inside a unit of work."""
        bound = self._bound()
        if bound is None:
            with write_transaction(self.engine) as conn:
                yield conn
            return
        with bound.begin_nested():
            yield bound

    def checkpoint_wal(self) -> tuple[int, int] | None:
        """Fold the SQLite WAL back into the database file and truncate it (no-op on PostgreSQL)."""
        return checkpoint_wal(self.engine)

    # -- ledger -----------------------------------------------------------
    def enqueue(self, queued_us: int, count: int, payload: bytes, *, unit: object | None = None) -> int:
        """Durably queue one append (one row); inside ``unit`` when the caller passes its transaction.

        ``unit`` must be a SQLAlchemy ``Connection`` with a transaction begun on
        this store's database; the entry is then acknowledged when the caller commits.
        """
        if unit is not None:
            if not isinstance(unit, Connection):
                raise InvalidInput(
                    f"unit of work {type(unit).__name__} is not a database connection",
                    hint="pass the sqlalchemy Connection of the transaction the entries belong to",
                )
            return self._enqueue(unit, queued_us, count, payload)
        try:
            with self._write() as conn:  # joins the caller's unit of work (store.transaction()) if one is open
                return self._enqueue(conn, queued_us, count, payload)
        except OperationalError as exc:
            raise StorageError(f"ledger append failed: {exc.orig}", hint="retry; check the database") from None

    @staticmethod
    def _enqueue(conn: Connection, queued_us: int, count: int, payload: bytes) -> int:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        row = conn.exec_driver_sql(
            f"INSERT INTO ledger_queue (queued_us, count, payload) VALUES ({mark}, {mark}, {mark}) RETURNING id",
            (queued_us, count, payload),
        ).one()
        return int(row[0])

    def integrate(
        self,
        plan: Callable[[int, bytes, list[QueuedBatch]], IntegrationPlan],
        *,
        wait: bool = True,
        max_entries: int = 20_000,
        up_to: int | None = None,
    ) -> IntegrationPlan | None:
        """Integrate the oldest queued batches (up to about ``max_entries`` entries) in one transaction.

        With ``up_to`` only batches with ``id <= up_to`` are taken, so a caller
        waiting for its own batch is not kept busy by appends that came later.

        One integrator at a time across processes and hosts: a transaction-scoped
        advisory lock on PostgreSQL, the database write lock on SQLite (taken by
        the first statement, an UPDATE of the head row).  Appends only INSERT
        into the queue, so they never wait for this lock on PostgreSQL.
        """
        head, queue = t.ledger_head, t.ledger_queue
        try:
            with write_transaction(self.engine) as conn:  # its own transaction, never a caller's unit of work
                if not self._lock_integrator(conn, wait=wait):
                    return None
                size, state = conn.execute(select(head.c.size, head.c.state)).one()
                query = select(queue.c.id, queue.c.count)
                if up_to is not None:
                    query = query.where(queue.c.id <= up_to)
                pending = conn.execute(query.order_by(queue.c.id).limit(max(1, max_entries))).all()
                ids: list[int] = []
                total = 0
                for batch_id, count in pending:
                    if ids and total + count > max_entries:
                        break
                    ids.append(int(batch_id))
                    total += int(count)
                batches = self._queued_payloads(conn, ids)
                result = plan(int(size), bytes(state), batches)
                if result.rows:
                    self._write_integration(conn, result, ids)
        except OperationalError as exc:
            raise StorageError(f"ledger integration failed: {exc.orig}", hint="retry; check the database") from None
        return result

    def enqueue_once(self, key: str, queued_us: int, count: int, payload: bytes) -> tuple[int, bool]:
        """:meth:`enqueue` at most once per ``key``: ``(batch id, whether this call queued it)``.

        The key is stored in the same transaction as the queued batch, so a
        writer killed at any point either queued the batch and recorded the key,
        or did neither; a retried job passes the same key and queues nothing twice.
        """
        once = t.ledger_once
        for _ in range(3):
            with self._read() as conn:
                seen = conn.execute(select(once.c.batch_id).where(once.c.key == key)).scalar()
            if seen is not None:
                return int(seen), False
            try:
                with self.transaction(), self._write() as conn:
                    batch_id = self._enqueue(conn, queued_us, count, payload)
                    conn.execute(insert(once).values(key=key, batch_id=batch_id))
                return batch_id, True
            except IntegrityError:
                continue  # another writer recorded the key first: read theirs
        raise StorageError(f"ledger batch key {key[:40]!r} keeps conflicting", hint="retry the task")

    def _lock_integrator(self, conn: Connection, *, wait: bool) -> bool:
        if conn.dialect.name == "postgresql":
            if wait:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_INTEGRATOR_LOCK})")
                return True
            return bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_xact_lock({_INTEGRATOR_LOCK})").scalar())
        head = t.ledger_head
        conn.execute(update(head).where(head.c.id == 1).values(writes=head.c.writes + 1))
        return True

    @staticmethod
    def _queued_payloads(conn: Connection, ids: list[int]) -> list[QueuedBatch]:
        queue = t.ledger_queue
        found: dict[int, bytes] = {}
        for chunk in _chunks(ids):
            rows = conn.execute(select(queue.c.id, queue.c.payload).where(queue.c.id.in_(chunk)))
            found.update({int(i): bytes(p) for i, p in rows})
        return [QueuedBatch(i, found[i]) for i in ids]

    def _write_integration(self, conn: Connection, result: IntegrationPlan, ids: list[int]) -> None:
        head, queue = t.ledger_head, t.ledger_queue
        if conn.dialect.name == "postgresql":
            _copy_rows(conn, "ledger_entries", _ENTRY_COLUMNS, result.rows)
            _copy_rows(conn, "ledger_nodes", _NODE_COLUMNS, result.nodes)
            _copy_rows(conn, "ledger_batches", _BATCH_COLUMNS, result.batches)
        else:
            conn.exec_driver_sql(_insert_sql(conn, "ledger_entries", _ENTRY_COLUMNS), list(result.rows))
            if result.nodes:
                conn.exec_driver_sql(_insert_sql(conn, "ledger_nodes", _NODE_COLUMNS), list(result.nodes))
            conn.exec_driver_sql(_insert_sql(conn, "ledger_batches", _BATCH_COLUMNS), list(result.batches))
        for chunk in _chunks(ids):
            conn.execute(delete(queue).where(queue.c.id.in_(chunk)))
        conn.execute(update(head).where(head.c.id == 1).values(size=result.new_size, state=result.new_state))
        self._write_usage(conn, result)

    def _write_usage(self, conn: Connection, result: IntegrationPlan) -> None:
        """Add the integrated entries to the per-artist usage rollup and refusal list (same transaction)."""
        if not result.usage:
            return
        tr = t.tracks
        owner: dict[str, str] = {}
        for chunk in _chunks(sorted({track for track, _, _, _ in result.usage})):
            owner.update(
                (str(i), str(a)) for i, a in conn.execute(select(tr.c.id, tr.c.artist_id).where(tr.c.id.in_(chunk)))
            )
        per_artist: Counter[tuple[str, int, str, str]] = Counter()
        for (track, day, purpose, decision), n in result.usage.items():
            if track in owner:  # entries about a track id never registered (or since deleted) have no artist
                per_artist[(owner[track], day, purpose, decision)] += n
        _upsert(
            conn, "usage_daily", ("artist_id", "day", "purpose", "decision"), [(*k, n) for k, n in per_artist.items()]
        )
        refusals = [(seq, owner[track], time, actor, purpose, track, reason)
                    for seq, time, actor, purpose, track, reason in result.refusals if track in owner]  # fmt: skip
        if refusals:
            columns = ("seq", "artist_id", "time", "actor", "purpose", "track_id", "reason")
            conn.exec_driver_sql(_insert_sql(conn, "usage_refusals", columns), refusals)

    def artist_usage(self, artist_id: ArtistId, *, first_day: int, last_day: int) -> dict[tuple[str, str], int]:
        """Ledger entries about the artist's tracks over the days, per (purpose, decision): one range scan."""
        u = t.usage_daily
        query = (
            select(u.c.purpose, u.c.decision, func.sum(u.c.entries))
            .where(u.c.artist_id == artist_id, u.c.day >= first_day, u.c.day <= last_day)
            .group_by(u.c.purpose, u.c.decision)
        )
        with self._read() as conn:
            return {(str(p), str(d)): int(n) for p, d, n in conn.execute(query)}

    def artist_refusals(self, artist_id: ArtistId, *, limit: int = 20) -> list[tuple[int, str, str, str, str, str]]:
        """The artist's newest refusals: (seq, time, actor, purpose, track, reason), newest first."""
        r = t.usage_refusals
        query = (
            select(r.c.seq, r.c.time, r.c.actor, r.c.purpose, r.c.track_id, r.c.reason)
            .where(r.c.artist_id == artist_id)
            .order_by(r.c.seq.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [(int(s), str(tm), str(a), str(p), str(tk), str(rs)) for s, tm, a, p, tk, rs in conn.execute(query)]

    def batch_range(self, batch_id: int) -> tuple[int, int] | None:
        """``(first sequence, count)`` of an integrated queue batch, None while it is still queued."""
        b = t.ledger_batches
        with self._read() as conn:
            row = conn.execute(select(b.c.first_seq, b.c.count).where(b.c.id == batch_id)).first()
        return None if row is None else (int(row[0]), int(row[1]))

    def last_queued(self) -> int:
        """The newest queue id visible now (-1 when the queue is empty)."""
        with self._read() as conn:
            found = conn.execute(select(func.max(t.ledger_queue.c.id))).scalar()
        return -1 if found is None else int(found)

    def queued_batches(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.ledger_queue)).scalar_one())

    def ledger_head(self) -> tuple[int, bytes]:
        with self._read() as conn:
            size, state = conn.execute(select(t.ledger_head.c.size, t.ledger_head.c.state)).one()
        return int(size), bytes(state)

    def node_range(self, level: int, start: int, stop: int) -> list[bytes]:
        """Stored hashes of perfect subtrees ``(level, start) .. (level, stop - 1)``, in order."""
        with self._read() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(
                f"SELECT idx, hash FROM ledger_nodes WHERE level = {mark} AND idx >= {mark} AND idx < {mark} "
                "ORDER BY idx",
                (level, start, stop),
            )
            rows = cursor.fetchall()
            cursor.close()
        if len(rows) != stop - start or (rows and int(rows[0][0]) != start):
            raise LedgerError(
                f"node store holds {len(rows)} of the {stop - start} nodes at level {level} from {start}",
                hint="the stored tree is smaller than asked or damaged; run `consentune ledger audit --full`",
            )
        return [bytes(h) for _, h in rows]

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        """Batch lookup; one ``level = ? AND idx IN (...)`` term per level so every backend uses the key."""
        n = t.ledger_nodes
        by_level: dict[int, list[int]] = {}
        for level, idx in keys:
            by_level.setdefault(level, []).append(idx)
        terms = [and_(n.c.level == lv, n.c.idx.in_(idxs)) for lv, idxs in by_level.items()]
        found: dict[tuple[int, int], bytes] = {}
        if not terms:
            return found
        with self._read() as conn:
            for chunk in _chunks(terms, 64):
                rows = conn.execute(select(n.c.level, n.c.idx, n.c.hash).where(or_(*chunk)))
                found.update({(int(lv), int(ix)): bytes(h) for lv, ix, h in rows})
        return found

    def iter_ledger(self, *, start: int = 0, stop: int | None = None, batch: int = 10_000) -> Iterator[list[LedgerRow]]:
        """Entries with ``start <= seq < stop`` in pages of ``batch``, in order (raw cursor: audits read millions)."""
        after = start - 1
        end = 2**63 - 1 if stop is None else stop
        while True:
            with self._read() as conn:
                mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                cursor.execute(
                    f"SELECT seq, data, leaf_hash FROM ledger_entries WHERE seq > {mark} AND seq < {mark} "
                    f"ORDER BY seq LIMIT {int(batch)}",
                    (after, end),
                )
                rows = cursor.fetchall()
                cursor.close()
            if not rows:
                return
            yield [LedgerRow(s, _as_bytes(d), _as_bytes(h)) for s, d, h in rows]
            after = int(rows[-1][0])

    def iter_nodes(self, *, batch: int = 50_000) -> Iterator[list[tuple[int, int, bytes]]]:
        n = t.ledger_nodes
        after = (-1, -1)
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    select(n.c.level, n.c.idx, n.c.hash)
                    .where(tuple_(n.c.level, n.c.idx) > tuple_(*after))
                    .order_by(n.c.level, n.c.idx)
                    .limit(batch)
                ).all()
            if not rows:
                return
            yield [(int(lv), int(ix), bytes(h)) for lv, ix, h in rows]
            after = (int(rows[-1][0]), int(rows[-1][1]))

    def ledger_rows(self, seqs: Sequence[int]) -> list[LedgerRow]:
        e = t.ledger_entries
        out: list[LedgerRow] = []
        with self._read() as conn:
            for chunk in _chunks(list(seqs)):
                rows = conn.execute(select(e.c.seq, e.c.data, e.c.leaf_hash).where(e.c.seq.in_(chunk)))
                out.extend(LedgerRow(int(s), bytes(d), bytes(h)) for s, d, h in rows)
        return sorted(out, key=lambda r: r.seq)

    def track_ledger_seqs(
        self, track: TrackId, purpose: Purpose | None, *, limit: int, after: int = -1, before: int | None = None
    ) -> list[int]:
        """Sequences about ``track``: the first ``limit`` after ``after`` (below ``before``), ascending.

        With ``after`` negative and no ``before`` it keeps the old meaning: the latest ``limit``.
        """
        e = t.ledger_entries
        query = select(e.c.seq).where(e.c.track_id == track)
        if purpose is not None:
            query = query.where(e.c.purpose == purpose)
        if before is not None:
            query = query.where(e.c.seq < before)
        if after >= 0 or before is not None:
            query = query.where(e.c.seq > after).order_by(e.c.seq)
        else:
            query = query.order_by(e.c.seq.desc())
        with self._read() as conn:
            rows = conn.execute(query.limit(limit)).scalars().all()
        return sorted(int(s) for s in rows)

    def add_checkpoint(self, cp: StoredCheckpoint) -> None:
        """Store a checkpoint; if another worker stored this tree size at the same moment, keep theirs."""
        c = t.ledger_checkpoints
        values = {"size": cp.size, "root_hash": cp.root_hash, "note": cp.note, "created_us": to_us(cp.created_at)}
        try:
            with self._attempt() as conn:
                if conn.execute(select(c.c.size).where(c.c.size == cp.size)).first() is None:
                    conn.execute(insert(c).values(**values))
        except IntegrityError:
            pass  # same size means same root: both signed the same tree

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        c = t.ledger_checkpoints
        with self._read() as conn:
            row = conn.execute(select(c).order_by(c.c.size.desc()).limit(1)).first()
        return None if row is None else _checkpoint(row)

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        c = t.ledger_checkpoints
        with self._read() as conn:
            row = conn.execute(select(c).where(c.c.size == size)).first()
        return None if row is None else _checkpoint(row)

    def list_checkpoints(
        self, *, limit: int = 1_000_000, newest_first: bool = False, min_size: int = 0, max_size: int | None = None
    ) -> list[StoredCheckpoint]:
        c = t.ledger_checkpoints
        order = c.c.size.desc() if newest_first else c.c.size
        query = select(c).where(c.c.size >= min_size)
        if max_size is not None:
            query = query.where(c.c.size <= max_size)
        with self._read() as conn:
            rows = conn.execute(query.order_by(order).limit(limit)).all()
        return [_checkpoint(r) for r in rows]

    def last_audit(self) -> StoredCheckpoint | None:
        """The checkpoint the last clean audit reached (its note is verified again before use)."""
        a = t.ledger_audits
        with self._read() as conn:
            row = conn.execute(select(a).order_by(a.c.size.desc()).limit(1)).first()
        return (
            None
            if row is None
            else StoredCheckpoint(int(row.size), bytes(row.root_hash), row.note, from_us(row.audited_us))
        )

    def add_audit(self, cp: StoredCheckpoint) -> None:
        a = t.ledger_audits
        with self._write() as conn:
            if conn.execute(select(a.c.size).where(a.c.size == cp.size)).first() is None:
                conn.execute(
                    insert(a).values(
                        size=cp.size, root_hash=cp.root_hash, note=cp.note, audited_us=to_us(cp.created_at)
                    )
                )

    # -- catalogue --------------------------------------------------------
    def add_artist(self, artist: Artist) -> None:
        try:
            with self._attempt() as conn:
                conn.execute(
                    insert(t.artists).values(
                        id=artist.id,
                        name=artist.name,
                        terms_version=artist.terms_version,
                        created_us=to_us(artist.created_at),
                    )
                )
        except IntegrityError:
            raise Conflict(
                f"artist name {artist.name!r} is taken",
                hint="choose another name or use the existing artist",
            ) from None

    def get_artist(self, artist_id: ArtistId) -> Artist | None:
        with self._read() as conn:
            row = conn.execute(select(t.artists).where(t.artists.c.id == artist_id)).first()
        return None if row is None else _artist(row)

    def artist_by_name(self, name: str) -> Artist | None:
        with self._read() as conn:
            row = conn.execute(select(t.artists).where(t.artists.c.name == name)).first()
        return None if row is None else _artist(row)

    def list_artists(self) -> list[Artist]:
        with self._read() as conn:
            rows = conn.execute(select(t.artists).order_by(t.artists.c.name)).all()
        return [_artist(r) for r in rows]

    def artists_by_id(self, artist_ids: Sequence[ArtistId]) -> dict[ArtistId, Artist]:
        a = t.artists
        out: dict[ArtistId, Artist] = {}
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(artist_ids))):
                out.update({ArtistId(r.id): _artist(r) for r in conn.execute(select(a).where(a.c.id.in_(chunk)))})
        return out

    def artists_page(self, *, after: str, limit: int) -> list[Artist]:
        """Artists by name after ``after`` (a keyset scan of the unique name index)."""
        a = t.artists
        with self._read() as conn:
            rows = conn.execute(select(a).where(a.c.name > after).order_by(a.c.name).limit(limit)).all()
        return [_artist(r) for r in rows]

    def add_track(self, track: Track, *, filename: str, actor: str) -> tuple[Track, bool]:
        """Insert ``track`` unless the artist already has these exact bytes; log the upload."""
        try:
            return self._add_track(track, filename=filename, actor=actor)
        except IntegrityError:  # the same bytes arrived twice at once: the other insert won
            return self._add_track(track, filename=filename, actor=actor)

    def _add_track(self, track: Track, *, filename: str, actor: str) -> tuple[Track, bool]:
        tr = t.tracks
        with self._attempt() as conn:
            row = conn.execute(
                select(tr).where(
                    and_(
                        tr.c.artist_id == track.artist_id,
                        tr.c.content_sha256 == track.content_sha256,
                    )
                )
            ).first()
            created = row is None
            if created:
                values = _track_values(track)
                if conn.dialect.name == "sqlite":  # PostgreSQL draws pos from a sequence
                    values["pos"] = select(func.coalesce(func.max(tr.c.pos), 0) + 1).scalar_subquery()
                conn.execute(insert(tr).values(**values))
                stored = track
            else:
                stored = _track(row)
            conn.execute(
                insert(t.uploads).values(
                    track_id=stored.id,
                    filename=filename,
                    actor=actor,
                    received_us=to_us(track.created_at),
                )
            )
        return stored, created

    def get_track(self, track_id: TrackId) -> Track | None:
        with self._read() as conn:
            row = conn.execute(select(t.tracks).where(t.tracks.c.id == track_id)).first()
        return None if row is None else _track(row)

    def list_tracks(self, *, artist_id: ArtistId | None = None, limit: int = 100, offset: int = 0) -> list[Track]:
        query = select(t.tracks).order_by(t.tracks.c.created_us, t.tracks.c.id)
        if artist_id is not None:
            query = query.where(t.tracks.c.artist_id == artist_id)
        with self._read() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [_track(r) for r in rows]

    def track_owners(self, track_ids: Sequence[TrackId]) -> dict[TrackId, ArtistId]:
        with self._read() as conn:
            return self._track_owners(conn, track_ids)

    @staticmethod
    def _track_owners(conn: Connection, track_ids: Sequence[TrackId]) -> dict[TrackId, ArtistId]:
        owners: dict[TrackId, ArtistId] = {}
        tr = t.tracks
        for chunk in _chunks(list(dict.fromkeys(track_ids))):
            rows = conn.execute(select(tr.c.id, tr.c.artist_id).where(tr.c.id.in_(chunk)))
            owners.update({TrackId(i): ArtistId(a) for i, a in rows})
        return owners

    def count_tracks(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(t.tracks)).scalar_one())

    def set_track_tags(self, track_id: TrackId, tags: Sequence[str]) -> None:
        """Replace the track's tags (one transaction)."""
        with self._write() as conn:
            conn.execute(delete(t.track_tags).where(t.track_tags.c.track_id == track_id))
            if tags:
                conn.execute(insert(t.track_tags), [{"track_id": track_id, "tag": tag} for tag in dict.fromkeys(tags)])

    def track_tags(self, track_ids: Sequence[TrackId]) -> dict[TrackId, list[str]]:
        g = t.track_tags
        out: dict[TrackId, list[str]] = {}
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(track_ids))):
                rows = conn.execute(select(g.c.track_id, g.c.tag).where(g.c.track_id.in_(chunk)).order_by(g.c.tag))
                for track, tag in rows:
                    out.setdefault(TrackId(track), []).append(tag)
        return out

    def tracks_with_content(self, sha256: str) -> list[TrackId]:
        tr = t.tracks
        with self._read() as conn:
            rows = conn.execute(select(tr.c.id).where(tr.c.content_sha256 == sha256).order_by(tr.c.id))
            return [TrackId(r[0]) for r in rows]

    def content_groups(self) -> list[list[TrackId]]:
        """Tracks sharing one original (same SHA-256), for every original stored more than once."""
        tr = t.tracks
        shared = select(tr.c.content_sha256).group_by(tr.c.content_sha256).having(func.count() > 1).subquery()
        query = select(tr.c.content_sha256, tr.c.id).where(tr.c.content_sha256.in_(select(shared.c.content_sha256)))
        groups: dict[str, list[TrackId]] = {}
        with self._read() as conn:
            for sha, track in conn.execute(query.order_by(tr.c.content_sha256, tr.c.id)):
                groups.setdefault(sha, []).append(TrackId(track))
        return list(groups.values())

    # -- public catalogue (listener pages): keyset scans and index lookups only --
    def _entries(self) -> Any:
        tr, a = t.tracks, t.artists
        return select(tr, a.c.name.label("artist_name"), a.c.consent_version).select_from(
            tr.join(a, a.c.id == tr.c.artist_id)
        )

    def catalog_page(self, *, after: int, limit: int, artist_id: ArtistId | None = None) -> list[CatalogEntry]:
        """Tracks in catalogue order whose index is at least ``after`` (one index range scan)."""
        tr = t.tracks
        query = self._entries().where(tr.c.pos > after)
        if artist_id is not None:
            query = query.where(tr.c.artist_id == artist_id)
        with self._read() as conn:
            rows = conn.execute(query.order_by(tr.c.pos).limit(limit)).all()
        return [_entry(r) for r in rows]

    def catalog_entry(self, track_id: TrackId) -> CatalogEntry | None:
        with self._read() as conn:
            row = conn.execute(self._entries().where(t.tracks.c.id == track_id)).first()
        return None if row is None else _entry(row)

    def search_catalog(self, words: Sequence[str], *, limit: int, scan: int = 2000) -> list[CatalogEntry]:
        """Tracks whose title or artist name holds every word (the last one as a prefix), in catalogue order.

        ``words`` are letters and digits only (the caller splits the query); SQLite answers from the
        FTS5 table, PostgreSQL from the GIN-indexed ``search`` tsvector.  On PostgreSQL a common word
        would make the GIN index return a large share of the catalogue only to keep the first ``limit``,
        so the first ``scan`` tracks are tried first: if they hold ``limit`` hits, those are the answer.
        """
        if not words:
            return []
        tr = t.tracks
        with self._read() as conn:
            if conn.dialect.name == "postgresql":
                terms = [f"'{w}'" for w in words[:-1]] + [f"'{words[-1]}':*"]
                params = {"q": " & ".join(terms), "n": limit, "scan": scan}
                found = conn.execute(_PG_SEARCH_HEAD, params).scalars().all()
                if len(found) < limit:
                    found = conn.execute(_PG_SEARCH, params).scalars().all()
            else:
                terms = [f'"{w}"' for w in words[:-1]] + [f'"{words[-1]}"*']
                found = conn.execute(_FTS_SEARCH, {"q": " ".join(terms), "n": limit}).scalars().all()
            query = self._entries().where(tr.c.pos.in_(found)).order_by(tr.c.pos)
            rows = conn.execute(query).all() if found else []
        return [_entry(r) for r in rows]

    def artist_consent_version(self, artist_id: ArtistId) -> int:
        """The artist's consent counter (-1 for an unknown artist): one primary-key read."""
        a = t.artists
        with self._read() as conn:
            found = conn.execute(select(a.c.consent_version).where(a.c.id == artist_id)).scalar()
        return -1 if found is None else int(found)

    def purposes_ever_allowed(self, purposes: Sequence[Purpose], *, at: datetime) -> dict[Purpose, bool]:
        """Per purpose: may any track be allowed it at ``at``?  Answered from aggregates, not per track.

        True when an active allow rule that no later rule of its scope supersedes names the purpose, or some
        terms version an artist is on makes it opt-out or required.  An over-approximation (a track rule
        may still deny): callers use it only to open paths whose per-track signals give each answer.
        """
        r, a = t.consent_rules, t.artists
        later = r.alias("later")

        def active(rule: Any) -> Any:
            at_us = to_us(at)
            return and_(
                or_(rule.c.valid_from_us.is_(None), rule.c.valid_from_us <= at_us),
                or_(rule.c.valid_until_us.is_(None), rule.c.valid_until_us > at_us),
            )

        superseded = select(later.c.id).where(
            later.c.artist_id == r.c.artist_id,
            later.c.purpose == r.c.purpose,
            later.c.track_id.is_not_distinct_from(r.c.track_id),
            active(later),
            or_(later.c.created_us > r.c.created_us, and_(later.c.created_us == r.c.created_us, later.c.id > r.c.id)),
        )
        winning = and_(r.c.allow.is_(True), active(r), ~superseded.exists())
        with self._read() as conn:
            ruled = {
                p for p in purposes if conn.execute(select(r.c.id).where(r.c.purpose == p, winning).limit(1)).first()
            }
            default_on: set[str] = set()
            for version, raw in conn.execute(select(t.terms.c.version, t.terms.c.kinds_json)).all():
                on = {p for p, k in json.loads(raw).items() if k != PurposeKind.OPT_IN.value} - default_on
                used = select(a.c.id).where(a.c.terms_version == version).limit(1)  # an index probe per version
                if on and conn.execute(used).first() is not None:
                    default_on |= on
        return {p: p in ruled or p in default_on for p in purposes}

    # -- consent ----------------------------------------------------------
    def begin_consent_change(self) -> int:
        """Take the consent write lock for this transaction and move the consent version; returns it.

        Every consent write calls this first, so consent writers serialise
        across processes (rule ids and times follow commit order) and readers
        can tell that what they hold is out of date.
        """
        cs = t.consent_state
        with self._write() as conn:
            conn.execute(update(cs).where(cs.c.id == 1).values(version=cs.c.version + 1))
            return int(conn.execute(select(cs.c.version).where(cs.c.id == 1)).scalar_one())

    def consent_version(self) -> int:
        cs = t.consent_state
        with self._read() as conn:
            return int(conn.execute(select(cs.c.version).where(cs.c.id == 1)).scalar_one())

    def consent_snapshot(self, tracks: Sequence[TrackId]) -> ConsentSnapshot:
        """Owners, accepted terms and rules for ``tracks``, read in one transaction with the consent version.

        Inside :meth:`transaction`, consent changes wait until that transaction ends.
        """
        holding = self._bound() is not None
        with self._read(snapshot=True) as conn:
            cs = t.consent_state
            query = select(cs.c.version).where(cs.c.id == 1)
            # inside a unit of work, hold consent still (a shared row lock on PostgreSQL; SQLite's write
            # lock is already held) until it commits, so what it logs is ordered with consent changes
            version = int(conn.execute(query.with_for_update(read=True) if holding else query).scalar_one())
            owners = self._track_owners(conn, tracks)
            artists = sorted(set(owners.values()))
            return ConsentSnapshot(
                version, owners, self._artist_terms(conn, artists), self._rules_for_artists(conn, artists)
            )

    def publish_terms(self, terms: Terms) -> Terms:
        """Store ``terms`` as the next version (its ``version`` field is ignored)."""
        with self.transaction(), self._write() as conn:
            self.begin_consent_change()
            current = conn.execute(select(func.max(t.terms.c.version))).scalar()
            version = int(current or 0) + 1
            published = datetime.fromisoformat(terms.published_at) if terms.published_at else None
            at_us = to_us(published) if published else 0
            conn.execute(
                insert(t.terms).values(
                    version=version,
                    kinds_json=json.dumps({p: k.value for p, k in terms.kinds.items()}, sort_keys=True),
                    summary=terms.summary,
                    published_us=at_us,
                )
            )
            _bump_consent(conn, None)
        return Terms(version, dict(terms.kinds), terms.summary, terms.published_at, terms.explanations)

    def all_terms(self) -> dict[int, Terms]:
        with self._read() as conn:
            rows = conn.execute(select(t.terms).order_by(t.terms.c.version)).all()
        return {int(r.version): _terms(r) for r in rows}

    def set_artist_terms(self, artist_id: ArtistId, version: int) -> None:
        with self.transaction(), self._write() as conn:
            self.begin_consent_change()
            conn.execute(update(t.artists).where(t.artists.c.id == artist_id).values(terms_version=version))
            _bump_consent(conn, artist_id)

    def artist_terms(self, artist_ids: Sequence[ArtistId]) -> dict[ArtistId, int]:
        with self._read() as conn:
            return self._artist_terms(conn, artist_ids)

    @staticmethod
    def _artist_terms(conn: Connection, artist_ids: Sequence[ArtistId]) -> dict[ArtistId, int]:
        a = t.artists
        out: dict[ArtistId, int] = {}
        for chunk in _chunks(list(dict.fromkeys(artist_ids))):
            rows = conn.execute(select(a.c.id, a.c.terms_version).where(a.c.id.in_(chunk)))
            out.update({ArtistId(i): int(v) for i, v in rows})
        return out

    def add_rule(self, rule: ConsentRule, *, actor: str) -> ConsentRule:
        """Store ``rule``; its creation time is moved just past the artist's latest rule if the clock lags.

        The latest-created rule of a scope wins, so times must follow commit
        order even when the writers' clocks disagree (another host, a clock
        step) or a writer waited for the lock after reading its clock.
        """
        r = t.consent_rules
        with self.transaction(), self._write() as conn:
            self.begin_consent_change()
            latest = conn.execute(select(func.max(r.c.created_us)).where(r.c.artist_id == rule.artist_id)).scalar()
            created_us = max(to_us(rule.created_at), int(latest) + 1 if latest is not None else 0)
            result = conn.execute(
                insert(r).values(
                    artist_id=rule.artist_id,
                    track_id=rule.track_id,
                    purpose=rule.purpose,
                    allow=rule.allow,
                    valid_from_us=opt_to_us(rule.valid_from),
                    valid_until_us=opt_to_us(rule.valid_until),
                    actor=actor,
                    created_us=created_us,
                )
            )
            new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            _bump_consent(conn, rule.artist_id)
        return replace(rule, id=new_id, created_at=from_us(created_us))

    def rules_for_artists(self, artist_ids: Sequence[ArtistId]) -> list[ConsentRule]:
        with self._read() as conn:
            return self._rules_for_artists(conn, artist_ids)

    @staticmethod
    def _rules_for_artists(conn: Connection, artist_ids: Sequence[ArtistId]) -> list[ConsentRule]:
        r = t.consent_rules
        out: list[ConsentRule] = []
        for chunk in _chunks(list(dict.fromkeys(artist_ids))):
            rows = conn.execute(select(r).where(r.c.artist_id.in_(chunk)).order_by(r.c.id))
            out.extend(_rule(row) for row in rows)
        return out

    def add_purge_job(self, artist_id: ArtistId, track_id: TrackId | None, purpose: Purpose, at: datetime) -> PurgeJob:
        with self._write() as conn:
            result = conn.execute(
                insert(t.purge_jobs).values(
                    artist_id=artist_id,
                    track_id=track_id,
                    purpose=purpose,
                    status="pending",
                    purged=0,
                    created_us=to_us(at),
                )
            )
            job_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        return PurgeJob(job_id, artist_id, track_id, purpose, "pending", 0, at, None)

    def finish_purge_job(self, job_id: int, *, purged: int, at: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                update(t.purge_jobs)
                .where(t.purge_jobs.c.id == job_id)
                .values(status="done", purged=purged, finished_us=to_us(at))
            )

    def recent_denials(self, *, limit: int) -> list[ConsentRule]:
        """The newest ``limit`` deny rules, newest first (walks the primary key backwards)."""
        r = t.consent_rules
        with self._read() as conn:
            rows = conn.execute(select(r).where(r.c.allow.is_(False)).order_by(r.c.id.desc()).limit(limit)).all()
        return [_rule(row) for row in rows]

    def list_purge_jobs(
        self, *, status: str | None = None, limit: int | None = None, newest_first: bool = False
    ) -> list[PurgeJob]:
        p = t.purge_jobs
        query = select(p).order_by(p.c.id.desc() if newest_first else p.c.id).limit(limit)
        if status is not None:
            query = query.where(p.c.status == status)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            PurgeJob(
                int(r.id),
                ArtistId(r.artist_id),
                TrackId(r.track_id) if r.track_id else None,
                Purpose(r.purpose),
                r.status,
                int(r.purged),
                from_us(r.created_us),
                opt_from_us(r.finished_us),
            )
            for r in rows
        ]

    # -- features ---------------------------------------------------------
    def put_feature(self, track: TrackId, kind: str, purpose: Purpose, data: bytes, at: datetime) -> None:
        f = t.features
        values = {"track_id": track, "kind": kind, "purpose": purpose, "data": data, "created_us": to_us(at)}
        for attempt in (1, 2):  # a concurrent writer of the same (track, kind) may win the insert once
            try:
                with self._attempt() as conn:
                    conn.execute(delete(f).where(and_(f.c.track_id == track, f.c.kind == kind)))
                    conn.execute(insert(f).values(**values))
                return
            except IntegrityError:
                if attempt == 2:
                    raise

    def put_features(self, items: Sequence[tuple[TrackId, str, Purpose, bytes]], at: datetime) -> None:
        """Store (track, kind, purpose, data) items in one transaction, replacing earlier ones."""
        f = t.features
        if not items:
            return
        rows = [{"track_id": tr, "kind": k, "purpose": p, "data": d, "created_us": to_us(at)} for tr, k, p, d in items]
        with self.engine.begin() as conn:
            for track, kind, _purpose, _data in items:
                conn.execute(delete(f).where(and_(f.c.track_id == track, f.c.kind == kind)))
            conn.execute(insert(f), rows)

    def get_tracks(self, track_ids: Sequence[TrackId]) -> dict[TrackId, Track]:
        """The known tracks among ``track_ids``, by id (unknown ids are left out)."""
        out: dict[TrackId, Track] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(track_ids))):
                for row in conn.execute(select(t.tracks).where(t.tracks.c.id.in_(chunk))):
                    track = _track(row)
                    out[track.id] = track
        return out

    def get_feature(self, track: TrackId, kind: str) -> tuple[Purpose, bytes] | None:
        f = t.features
        with self._read() as conn:
            row = conn.execute(
                select(f.c.purpose, f.c.data).where(and_(f.c.track_id == track, f.c.kind == kind))
            ).first()
        return None if row is None else (Purpose(row[0]), bytes(row[1]))

    def delete_features(self, tracks: Sequence[TrackId], purpose: Purpose) -> int:
        f = t.features
        deleted = 0
        with self._write() as conn:
            for chunk in _chunks(list(tracks)):
                result = conn.execute(delete(f).where(and_(f.c.track_id.in_(chunk), f.c.purpose == purpose)))
                deleted += int(result.rowcount or 0)
        return deleted

    def feature_tracks(self) -> dict[Purpose, list[TrackId]]:
        f = t.features
        out: dict[Purpose, list[TrackId]] = {}
        with self._read() as conn:
            rows = conn.execute(select(f.c.purpose, f.c.track_id).distinct().order_by(f.c.purpose, f.c.track_id))
            for purpose, track in rows:
                out.setdefault(Purpose(purpose), []).append(TrackId(track))
        return out

    def features_since(self, kind: str, since: datetime) -> list[TrackId]:
        f = t.features
        query = select(f.c.track_id).where(and_(f.c.kind == kind, f.c.created_us >= to_us(since)))
        with self._read() as conn:
            return [TrackId(track) for (track,) in conn.execute(query)]

    # -- identification matches ---------------------------------------------
    def replace_track_matches(self, track: TrackId, matches: Sequence[StoredMatch]) -> None:
        m = t.track_matches
        with self._write() as conn:
            conn.execute(delete(m).where(m.c.track_id == track))
            if matches:
                conn.execute(insert(m), [_match_values(x) for x in matches])

    def track_matches(self, track: TrackId) -> list[StoredMatch]:
        m = t.track_matches
        query = select(m).where(or_(m.c.track_id == track, m.c.matched_track_id == track))
        with self._read() as conn:
            rows = conn.execute(query.order_by(m.c.score.desc(), m.c.id)).all()
        return [_match(r) for r in rows]

    def recent_matches(self, *, limit: int) -> list[StoredMatch]:
        m = t.track_matches
        with self._read() as conn:
            rows = conn.execute(select(m).order_by(m.c.created_us.desc(), m.c.id.desc()).limit(limit)).all()
        return [_match(r) for r in rows]

    def delete_track_matches(self, tracks: Sequence[TrackId]) -> int:
        m = t.track_matches
        deleted = 0
        with self._write() as conn:
            for chunk in _chunks(list(tracks)):
                where = or_(m.c.track_id.in_(chunk), m.c.matched_track_id.in_(chunk))
                deleted += int(conn.execute(delete(m).where(where)).rowcount or 0)
        return deleted

    # -- plays ------------------------------------------------------------
    def add_plays(self, events: Sequence[PlayEvent]) -> int:
        """Insert play events in one transaction (all or nothing), rollups included."""
        if not events:
            return 0
        rows: list[PlayRow] = [
            (e.user_id, e.track_id, to_us(e.played_at), e.ms_played, e.ip, e.device_id, e.user_agent, e.country,
             opt_to_us(e.account_created_at))
            for e in events
        ]  # fmt: skip
        owners = self.track_owners(sorted({e.track_id for e in events}))
        with self.play_writer() as write:
            return write(rows, owners)

    @contextmanager
    def play_writer(self) -> Iterator[PlayWriter]:
        """One transaction for a whole import: each call writes a chunk of rows (COPY on PostgreSQL,
        executemany on SQLite) and folds it into the reach rollups; all of it commits at the end or none."""
        try:
            with self._write() as conn:
                if conn.dialect.name == "sqlite":
                    # index pages of a large import stay in memory (64 MB; the default is 2 MB)
                    conn.exec_driver_sql(f"PRAGMA cache_size=-{_IMPORT_CACHE_KB}")
                yield lambda rows, owners: _write_plays(conn, rows, owners)
        except OperationalError as exc:
            raise StorageError(f"writing plays failed: {exc.orig}", hint="retry; check the database") from None

    def add_impressions(self, tracks: Sequence[TrackId], *, at: datetime) -> None:
        """Count recommendation impressions of ``tracks`` (repeats count) into the reach rollups."""
        if not tracks:
            return
        day = to_us(at) // _DAY_US
        owners = self.track_owners(tracks)
        per_track = sorted(Counter(tracks).items())
        per_artist = sorted(Counter(owners[track] for track in tracks if track in owners).items())
        with self._write() as conn:
            _upsert(conn, "track_daily", ("track_id", "day"), [(tr, day, 0, n) for tr, n in per_track])
            _upsert(conn, "artist_daily", ("artist_id", "day"), [(a, day, 0, 0, n) for a, n in per_artist])

    def artist_days(self, artist_id: ArtistId, *, first_day: int, last_day: int) -> dict[int, tuple[int, int, int]]:
        """(plays, listeners, impressions) per day (days since the epoch) from the rollup: one range scan."""
        d = t.artist_daily
        query = select(d.c.day, d.c.plays, d.c.listeners, d.c.impressions).where(
            d.c.artist_id == artist_id, d.c.day >= first_day, d.c.day <= last_day
        )
        with self._read() as conn:
            return {int(day): (int(p), int(n), int(i)) for day, p, n, i in conn.execute(query)}

    def artist_listeners(self, artist_id: ArtistId, *, first_day: int, last_day: int) -> int:
        """Distinct listeners of the artist over the days (an index range scan of that artist's listeners)."""
        ls = t.artist_day_listeners
        query = select(func.count(func.distinct(ls.c.user_id))).where(
            ls.c.artist_id == artist_id, ls.c.day >= first_day, ls.c.day <= last_day
        )
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def track_totals(
        self, tracks: Sequence[TrackId], *, first_day: int, last_day: int
    ) -> dict[TrackId, tuple[int, int]]:
        """(plays, impressions) per track over the days, from the rollup; pass one page of tracks."""
        d = t.track_daily
        out: dict[TrackId, tuple[int, int]] = {}
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(tracks))):
                query = (
                    select(d.c.track_id, func.sum(d.c.plays), func.sum(d.c.impressions))
                    .where(d.c.track_id.in_(chunk), d.c.day >= first_day, d.c.day <= last_day)
                    .group_by(d.c.track_id)
                )
                out.update({TrackId(tr): (int(p), int(i)) for tr, p, i in conn.execute(query)})
        return out

    def iter_plays(
        self,
        tracks: Sequence[TrackId],
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        batch: int = 50_000,
        users: Sequence[str] | None = None,
    ) -> Iterator[list[PlayEvent]]:
        """Plays of ``tracks`` in [since, until) (by ``users`` only, when given), in pages of ``batch`` by row id."""
        p = t.plays
        for chunk in _chunks(list(dict.fromkeys(tracks))):
            after = -1
            while True:
                query = select(p).where(p.c.track_id.in_(chunk), p.c.id > after)
                if users is not None:
                    query = query.where(p.c.user_id.in_(list(users)))
                if since is not None:
                    query = query.where(p.c.played_us >= to_us(since))
                if until is not None:
                    query = query.where(p.c.played_us < to_us(until))
                with self._read() as conn:
                    rows = conn.execute(query.order_by(p.c.id).limit(batch)).all()
                if not rows:
                    break
                yield [_play(r) for r in rows]
                after = int(rows[-1].id)

    def play_pair_counts(self, tracks: Sequence[TrackId], *, min_ms: int) -> tuple[list[str], list[TrackId], list[int]]:
        """Columns (listener, track, plays) of every pair with plays of at least ``min_ms`` among ``tracks``.

        The database groups and counts, so only one row per pair crosses to
        Python, never one per play.
        """
        p = t.plays
        users: list[str] = []
        found: list[TrackId] = []
        counts: list[int] = []
        for chunk in _chunks(list(dict.fromkeys(tracks)), 2_000):
            query = (
                select(p.c.user_id, p.c.track_id, func.count())
                .where(p.c.track_id.in_(chunk), p.c.ms_played >= min_ms)
                .group_by(p.c.track_id, p.c.user_id)  # track first: SQLite keeps to the track index after ANALYZE
            )
            with self._read() as conn:
                rows = conn.execute(query).all()
            if rows:
                u, f, c = zip(*rows, strict=True)
                users.extend(u)
                found.extend(f)
                counts.extend(c)
        return users, found, counts

    def user_plays(self, user_id: str, *, limit: int = 1000) -> list[PlayEvent]:
        """The user's newest ``limit`` plays, newest first."""
        p = t.plays
        with self._read() as conn:
            rows = conn.execute(
                select(p).where(p.c.user_id == user_id).order_by(p.c.played_us.desc(), p.c.id.desc()).limit(limit)
            ).all()
        return [_play(r) for r in rows]

    # -- fraud ------------------------------------------------------------
    def save_alerts(self, alerts: Sequence[Alert]) -> None:
        """Insert or replace alerts (with their tracks and flagged members), in one transaction."""
        if not alerts:
            return
        ids = [a.id for a in alerts]
        with self._write() as conn:
            conn.execute(delete(t.fraud_flags).where(t.fraud_flags.c.alert_id.in_(ids)))
            conn.execute(delete(t.fraud_alert_tracks).where(t.fraud_alert_tracks.c.alert_id.in_(ids)))
            conn.execute(delete(t.fraud_alerts).where(t.fraud_alerts.c.id.in_(ids)))
            conn.execute(insert(t.fraud_alerts), [_alert_row(a) for a in alerts])
            tracks = [{"alert_id": a.id, "track_id": tr} for a in alerts for tr in a.tracks]
            if tracks:
                conn.execute(insert(t.fraud_alert_tracks), tracks)
            flags = [
                {
                    "alert_id": a.id,
                    "user_id": m,
                    "since_us": _sec_us(a.window_start - _FLAG_MARGIN_S),
                    "until_us": _sec_us(a.window_end + _FLAG_MARGIN_S),
                }
                for a in alerts
                for m in a.members
            ]
            if flags:
                conn.execute(insert(t.fraud_flags), flags)

    def fraud_alerts(self, *, tracks: Sequence[TrackId] | None, limit: int = 100) -> list[Alert]:
        """Alerts, strongest first; with ``tracks``, only alerts naming at least one of them."""
        a = t.fraud_alerts
        query = select(a).order_by(a.c.score.desc(), a.c.id).limit(limit)
        if tracks is not None:
            at = t.fraud_alert_tracks
            touching = select(at.c.alert_id).where(at.c.track_id.in_(list(tracks))).distinct()
            query = query.where(a.c.id.in_(touching))
        with self._read() as conn:
            return [_alert(r) for r in conn.execute(query)]

    def flagged_windows(self, user_ids: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
        f = t.fraud_flags
        out: dict[str, list[tuple[float, float]]] = {}
        with self._read() as conn:
            for chunk in _chunks(list(user_ids)):
                rows = conn.execute(select(f.c.user_id, f.c.since_us, f.c.until_us).where(f.c.user_id.in_(chunk)))
                for user, since, until in rows:
                    out.setdefault(user, []).append((since / 1e6, until / 1e6))
        return out

    # -- shield -----------------------------------------------------------
    def add_listener_account(self, account_id: str, token_sha256: str, *, at: float, address: str) -> None:
        with self._write() as conn:
            conn.execute(
                insert(t.listener_accounts).values(
                    id=account_id, token_sha256=token_sha256, created_us=_sec_us(at), created_address=address
                )
            )

    def listener_account(self, token_sha256: str) -> tuple[str, float] | None:
        a = t.listener_accounts
        with self._read() as conn:
            row = conn.execute(select(a.c.id, a.c.created_us).where(a.c.token_sha256 == token_sha256)).first()
        return None if row is None else (str(row[0]), int(row[1]) / 1e6)

    def add_listener_session(self, session: ListenerSession) -> None:
        with self._write() as conn:
            conn.execute(
                insert(t.listener_sessions).values(
                    id=session.id,
                    account_id=session.account_id,
                    created_us=_sec_us(session.created_at),
                    address=session.address,
                    user_agent=session.user_agent[:512],
                    challenge_passed_us=None,
                )
            )

    def listener_session(self, session_id: str) -> ListenerSession | None:
        s, a = t.listener_sessions, t.listener_accounts
        query = (
            select(
                s,
                a.c.created_us.label("account_created_us"),
                a.c.established_us.label("account_established_us"),
                a.c.verified_us.label("account_verified_us"),
            )
            .select_from(s.outerjoin(a, a.c.id == s.c.account_id))
            .where(s.c.id == session_id)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        passed = None if row.challenge_passed_us is None else int(row.challenge_passed_us) / 1e6
        account_at = None if row.account_created_us is None else int(row.account_created_us) / 1e6
        established = None if row.account_established_us is None else int(row.account_established_us) / 1e6
        verified = None if row.account_verified_us is None else int(row.account_verified_us) / 1e6
        return ListenerSession(
            row.id,
            row.account_id,
            int(row.created_us) / 1e6,
            row.address,
            row.user_agent,
            passed,
            account_at,
            established,
            verified,
        )

    def mark_challenge_passed(self, session_id: str, *, at: float) -> None:
        s = t.listener_sessions
        with self._write() as conn:
            conn.execute(update(s).where(s.c.id == session_id).values(challenge_passed_us=_sec_us(at)))

    def set_account_established(self, account_id: str, *, at: float | None) -> None:
        """Record when a listener account became established (its listening history), or that it lost it."""
        a = t.listener_accounts
        with self._write() as conn:
            conn.execute(
                update(a).where(a.c.id == account_id).values(established_us=None if at is None else _sec_us(at))
            )

    def add_stream_mark(self, mark: StreamMark) -> None:
        with self._write() as conn:
            conn.execute(
                insert(t.stream_marks).values(
                    serial=mark.serial,
                    session_id=mark.session_id,
                    account_id=mark.account_id,
                    track_id=mark.track_id,
                    issued_us=_sec_us(mark.issued_at),
                )
            )

    def stream_marks(self, serial: str, *, limit: int = 100) -> list[StreamMark]:
        """Streams that carried ``serial``, oldest first."""
        m = t.stream_marks
        query = select(m).where(m.c.serial == serial).order_by(m.c.id).limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [StreamMark(r.serial, r.session_id, r.account_id, r.track_id, int(r.issued_us) / 1e6) for r in rows]

    def mark_account_verified(self, account_id: str, *, at: float, kind: str, subject: str | None) -> bool:
        """Sign-up verification passed; False (nothing changed) when ``subject`` verified another account."""
        a = t.listener_accounts
        try:
            with self._attempt() as conn:
                conn.execute(
                    update(a)
                    .where(a.c.id == account_id)
                    .values(verified_us=_sec_us(at), verified_kind=kind, verified_subject=subject)
                )
        except IntegrityError:
            return False
        return True

    def record_shield_decision(self, record: ShieldRecord) -> int:
        with self._write() as conn:
            result = conn.execute(
                insert(t.shield_decisions).values(
                    at_us=_sec_us(record.at),
                    subject=record.subject,
                    action=record.action,
                    score=record.score,
                    signals_json=json.dumps(list(record.signals), sort_keys=True, default=str),
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def shield_decisions(
        self, *, action: str | None = None, active_only: bool = False, limit: int = 200, since: float | None = None
    ) -> list[ShieldRecord]:
        d = t.shield_decisions
        query = select(d).order_by(d.c.id.desc()).limit(limit)
        if action is not None:
            query = query.where(d.c.action == action)
        if active_only:
            query = query.where(d.c.lifted_us.is_(None))
        if since is not None:
            query = query.where(d.c.at_us >= _sec_us(since))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            ShieldRecord(
                int(r.id),
                int(r.at_us) / 1e6,
                r.subject,
                r.action,
                float(r.score),
                tuple(json.loads(r.signals_json)),
                None if r.lifted_us is None else int(r.lifted_us) / 1e6,
                r.lifted_by,
            )
            for r in rows
        ]

    def lift_block(self, record_id: int, *, at: float, by: str) -> bool:
        d = t.shield_decisions
        with self._write() as conn:
            result = conn.execute(
                update(d)
                .where(and_(d.c.id == record_id, d.c.lifted_us.is_(None)))
                .values(lifted_us=_sec_us(at), lifted_by=by)
            )
        return bool(result.rowcount)

    # -- API keys ---------------------------------------------------------
    def add_key(self, record: ApiKeyRecord, secret_sha256: str) -> None:
        with self._write() as conn:
            conn.execute(
                insert(t.api_keys).values(
                    id=record.id,
                    secret_sha256=secret_sha256,
                    role=record.role.value,
                    artist_id=record.artist_id,
                    label=record.label,
                    created_us=to_us(record.created_at),
                    revoked_us=None,
                )
            )

    def key_by_secret(self, secret_sha256: str) -> ApiKeyRecord | None:
        k = t.api_keys
        with self._read() as conn:
            row = conn.execute(select(k).where(k.c.secret_sha256 == secret_sha256)).first()
        return None if row is None else _key(row)

    def list_keys(self) -> list[ApiKeyRecord]:
        with self._read() as conn:
            rows = conn.execute(select(t.api_keys).order_by(t.api_keys.c.created_us)).all()
        return [_key(r) for r in rows]

    def revoke_key(self, key_id: str, at: datetime) -> bool:
        k = t.api_keys
        with self._write() as conn:
            result = conn.execute(
                update(k).where(and_(k.c.id == key_id, k.c.revoked_us.is_(None))).values(revoked_us=to_us(at))
            )
        return bool(result.rowcount)


_MATCH_FIELDS = (
    "score",
    "matched",
    "query_start_s",
    "query_end_s",
    "ref_start_s",
    "ref_end_s",
    "time_scale",
    "pitch_semitones",
)


def _match_values(match: StoredMatch) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(match, name) for name in _MATCH_FIELDS}
    values.update(track_id=match.track_id, matched_track_id=match.matched_track_id, created_us=to_us(match.created_at))
    return values


def _match(row: Any) -> StoredMatch:
    fields = {name: getattr(row, name) for name in _MATCH_FIELDS}
    return StoredMatch(
        track_id=TrackId(row.track_id),
        matched_track_id=TrackId(row.matched_track_id),
        created_at=from_us(row.created_us),
        **fields,
    )


_FTS_SEARCH = text("SELECT rowid FROM tracks_fts WHERE tracks_fts MATCH :q ORDER BY rowid LIMIT :n")
_PG_SEARCH = text("SELECT pos FROM tracks WHERE search @@ to_tsquery('simple', :q) ORDER BY pos LIMIT :n")
_PG_SEARCH_HEAD = text(
    "WITH head AS MATERIALIZED (SELECT pos, search FROM tracks ORDER BY pos LIMIT :scan) "
    "SELECT pos FROM head WHERE search @@ to_tsquery('simple', :q) ORDER BY pos LIMIT :n"
)
_DAY_US = 86_400_000_000
_IMPORT_CACHE_KB = 65_536


def _as_bytes(value: Any) -> bytes:
    """Drivers return ``bytes`` (sqlite3, psycopg) or a buffer; copy only the latter."""
    return value if type(value) is bytes else bytes(value)


def _write_plays(conn: Connection, rows: Sequence[PlayRow], owners: Mapping[TrackId, ArtistId]) -> int:
    """Add the chunk's new play events and fold them into the rollups; how many were new.

    An event already stored (same user, time and track) is skipped, so importing a
    file twice adds each play once and counts it once in the rollups.
    """
    if not rows:
        return 0
    conn.exec_driver_sql(_PLAY_BATCH_DDL)
    conn.exec_driver_sql("DELETE FROM play_batch")
    if conn.dialect.name == "postgresql":
        _copy_text(conn, "play_batch", _PLAY_COLUMNS, rows)
        new, _ = conn.exec_driver_sql(_PG_FOLD_PLAYS).one()  # one round trip: insert and every rollup
        return int(new)
    conn.exec_driver_sql(_insert_sql(conn, "play_batch", _PLAY_COLUMNS), rows)
    inserted = conn.exec_driver_sql(_SQLITE_NEW_PLAYS).all()
    _fold_rollups(conn, inserted, owners)
    return len(inserted)


_PLAY_BATCH_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS play_batch (user_id VARCHAR(64), track_id VARCHAR(32), played_us BIGINT, "
    "ms_played INTEGER, ip VARCHAR(45), device_id VARCHAR(128), user_agent VARCHAR(512), country VARCHAR(2), "
    "account_created_us BIGINT)"
)
_COLUMN_LIST = ", ".join(_PLAY_COLUMNS)
# floor division (SQL's integer division truncates toward zero; days before 1970 are negative)
_DAY_OF = f"(played_us / {_DAY_US} - CASE WHEN mod(played_us, {_DAY_US}) < 0 THEN 1 ELSE 0 END)"
_NEW_PLAYS = (
    f"INSERT INTO plays ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM play_batch WHERE true "
    "ORDER BY track_id, played_us ON CONFLICT (user_id, played_us, track_id) DO NOTHING"
)
_SQLITE_NEW_PLAYS = f"{_NEW_PLAYS} RETURNING user_id, track_id, played_us"
# rollup keys in sorted order: concurrent writers lock rollup rows in the same order, so they cannot deadlock
_PG_FOLD_PLAYS = f"""
WITH ins AS ({_NEW_PLAYS} RETURNING user_id, track_id, {_DAY_OF} AS day),
owned AS (SELECT ins.user_id, ins.day, tr.artist_id FROM ins JOIN tracks tr ON tr.id = ins.track_id),
per_track AS (
    INSERT INTO track_daily (track_id, day, plays, impressions)
    SELECT track_id, day, count(*), 0 FROM ins GROUP BY track_id, day ORDER BY track_id, day
    ON CONFLICT (track_id, day) DO UPDATE SET plays = track_daily.plays + excluded.plays RETURNING 1),
listeners AS (
    INSERT INTO artist_day_listeners (artist_id, day, user_id)
    SELECT DISTINCT artist_id, day, user_id FROM owned ORDER BY artist_id, day, user_id
    ON CONFLICT DO NOTHING RETURNING artist_id, day),
per_artist AS (
    INSERT INTO artist_daily (artist_id, day, plays, listeners, impressions)
    SELECT p.artist_id, p.day, p.n, coalesce(l.n, 0), 0
    FROM (SELECT artist_id, day, count(*) AS n FROM owned GROUP BY artist_id, day) AS p
    LEFT JOIN (SELECT artist_id, day, count(*) AS n FROM listeners GROUP BY artist_id, day) AS l
        USING (artist_id, day)
    ORDER BY p.artist_id, p.day
    ON CONFLICT (artist_id, day) DO UPDATE SET plays = artist_daily.plays + excluded.plays,
        listeners = artist_daily.listeners + excluded.listeners RETURNING 1)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM per_track) + (SELECT count(*) FROM per_artist)
"""


def _fold_rollups(conn: Connection, rows: Sequence[Any], owners: Mapping[TrackId, ArtistId]) -> None:
    """Count newly stored plays (user, track, played_us) into the reach rollups (the SQLite path)."""
    per_track: Counter[tuple[str, int]] = Counter()
    per_artist: Counter[tuple[str, int]] = Counter()
    listens: set[tuple[str, int, str]] = set()
    for user, track, played_us in rows:
        day = played_us // _DAY_US
        per_track[track, day] += 1
        artist = owners.get(TrackId(track))
        if artist is not None:
            per_artist[artist, day] += 1
            listens.add((artist, day, user))
    new_listeners = _add_listeners(conn, listens)
    _upsert(conn, "track_daily", ("track_id", "day"), [(tr, day, n, 0) for (tr, day), n in sorted(per_track.items())])
    _upsert(
        conn,
        "artist_daily",
        ("artist_id", "day"),
        [(a, day, n, new_listeners.get((a, day), 0), 0) for (a, day), n in sorted(per_artist.items())],
    )


def _add_listeners(conn: Connection, listens: set[tuple[str, int, str]]) -> dict[tuple[str, int], int]:
    """Record (artist, day, listener) triples; how many were new per (artist, day)."""
    if not listens:
        return {}
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS listen_batch (artist_id VARCHAR(32), day INTEGER, user_id VARCHAR(64))"
    )
    conn.exec_driver_sql("DELETE FROM listen_batch")
    if conn.dialect.name == "postgresql":
        _copy(conn, "listen_batch", ("artist_id", "day", "user_id"), list(listens))
    else:
        conn.exec_driver_sql(_insert_sql(conn, "listen_batch", ("artist_id", "day", "user_id")), list(listens))
    inserted = conn.exec_driver_sql(
        "INSERT INTO artist_day_listeners (artist_id, day, user_id) SELECT artist_id, day, user_id "
        "FROM listen_batch WHERE true ORDER BY artist_id, day, user_id ON CONFLICT DO NOTHING RETURNING artist_id, day"
    )  # RETURNING names only rows this transaction added: a listener two imports share is counted once
    return dict(Counter((str(a), int(d)) for a, d in inserted))


_ROLLUP_VALUES = {
    "track_daily": ("plays", "impressions"),
    "artist_daily": ("plays", "listeners", "impressions"),
    "usage_daily": ("entries",),
}


def _upsert(conn: Connection, table: str, key: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Add ``rows`` (key columns, then counts) to a rollup table: insert, or add to the existing counts."""
    if not rows:
        return
    counts = _ROLLUP_VALUES[table]
    add = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counts)
    sql = f"{_insert_sql(conn, table, (*key, *counts))} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {add}"
    conn.exec_driver_sql(sql, list(rows))


def _copy(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """PostgreSQL COPY FROM STDIN inside the connection's transaction."""
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)


def _copy_text(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """COPY ``rows`` as one text-format block: one write instead of one call per row.

    Falls back to row-by-row COPY when a value holds a tab, newline, carriage
    return or NUL (the parsers refuse those, but the store does not rely on it).
    """
    lines = "\n".join(["\t".join(["\x00" if v is None else str(v) for v in row]) for row in rows])
    tabs, nulls = len(rows) * (len(columns) - 1), sum(row.count(None) for row in rows)
    if lines.count("\t") != tabs or lines.count("\n") != len(rows) - 1 or "\r" in lines or lines.count("\x00") != nulls:
        _copy(conn, table, columns, rows)
        return
    block = lines.replace("\\", "\\\\").replace("\x00", "\\N") + "\n"
    raw = conn.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[union-attr]
        copy.write(block.encode("utf-8"))


def _bump_consent(conn: Connection, artist_id: ArtistId | None) -> None:
    """Mark a consent change in its own transaction: the artist's counter and the site-wide one."""
    if artist_id is not None:
        a = t.artists
        conn.execute(update(a).where(a.c.id == artist_id).values(consent_version=a.c.consent_version + 1))
    c = t.consent_state
    conn.execute(update(c).where(c.c.id == 1).values(version=c.c.version + 1))


def _entry(row: Any) -> CatalogEntry:
    return CatalogEntry(int(row.pos) - 1, _track(row), row.artist_name, int(row.consent_version))


def _artist(row: Any) -> Artist:
    return Artist(ArtistId(row.id), row.name, from_us(row.created_us), int(row.terms_version))


def _track(row: Any) -> Track:
    return Track(
        id=TrackId(row.id),
        artist_id=ArtistId(row.artist_id),
        title=row.title,
        content_sha256=row.content_sha256,
        format=row.format,
        duration_s=float(row.duration_s),
        sample_rate=int(row.sample_rate),
        channels=int(row.channels),
        size_bytes=int(row.size_bytes),
        created_at=from_us(row.created_us),
    )


def _track_values(track: Track) -> dict[str, Any]:
    return {
        "id": track.id,
        "artist_id": track.artist_id,
        "title": track.title,
        "content_sha256": track.content_sha256,
        "format": track.format,
        "duration_s": track.duration_s,
        "sample_rate": track.sample_rate,
        "channels": track.channels,
        "size_bytes": track.size_bytes,
        "created_us": to_us(track.created_at),
    }


def _terms(row: Any) -> Terms:
    kinds = {Purpose(p): PurposeKind(k) for p, k in json.loads(row.kinds_json).items()}
    published = from_us(row.published_us).isoformat() if row.published_us else ""
    return Terms(int(row.version), kinds, row.summary, published, EXPLANATIONS)


def _rule(row: Any) -> ConsentRule:
    """A stored rule; one whose times cannot be represented comes back as a defective deny, never an error."""
    track = TrackId(row.track_id) if row.track_id else None
    try:
        return ConsentRule(
            id=int(row.id),
            artist_id=ArtistId(row.artist_id),
            track_id=track,
            purpose=Purpose(row.purpose),
            allow=None if row.allow is None else bool(row.allow),
            created_at=from_us(row.created_us),
            valid_from=opt_from_us(row.valid_from_us),
            valid_until=opt_from_us(row.valid_until_us),
        )
    except (OverflowError, ValueError):
        # every decision reads the rule again: warn once per rule and process, not once per decision
        level = logging.DEBUG if row.id in _WARNED_RULES else logging.WARNING
        if len(_WARNED_RULES) < 10_000:
            _WARNED_RULES.add(row.id)
        _log.log(
            level,
            "consent rule %s of artist %s has times outside the representable range "
            "(created %s, from %s, until %s µs); it is read as a deny",
            row.id, row.artist_id, row.created_us, row.valid_from_us, row.valid_until_us,
        )  # fmt: skip
        return ConsentRule(
            id=int(row.id),
            artist_id=ArtistId(row.artist_id),
            track_id=track,
            purpose=Purpose(row.purpose),
            allow=False,
            created_at=_safe_from_us(row.created_us),
            defect=f"stored time bounds out of range (from {row.valid_from_us} µs, until {row.valid_until_us} µs)",
        )


_WARNED_RULES: set[int] = set()


def _safe_from_us(value: int) -> datetime:
    try:
        return from_us(value)
    except (OverflowError, ValueError):
        return from_us(0)


def _checkpoint(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(int(row.size), bytes(row.root_hash), row.note, from_us(row.created_us))


def _sec_us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _play(row: Any) -> PlayEvent:
    return PlayEvent(
        user_id=row.user_id,
        track_id=TrackId(row.track_id),
        played_at=from_us(row.played_us),
        ms_played=int(row.ms_played),
        ip=row.ip,
        device_id=row.device_id,
        user_agent=row.user_agent,
        country=row.country,
        account_created_at=opt_from_us(row.account_created_us),
    )


_FLAG_MARGIN_S = 3600.0


def _alert_row(alert: Alert) -> dict[str, Any]:
    evidence = {
        "members": list(alert.members),
        "tracks": list(alert.tracks),
        "networks": list(alert.networks),
        "devices": list(alert.devices),
        "signals": alert.signals,
        "raised_at": alert.raised_at,
        "updated_at": alert.updated_at,
        "window_start": alert.window_start,
        "window_end": alert.window_end,
    }
    return {
        "id": alert.id,
        "score": alert.score,
        "raised_us": _sec_us(alert.raised_at),
        "updated_us": _sec_us(alert.updated_at),
        "window_start_us": _sec_us(alert.window_start),
        "window_end_us": _sec_us(alert.window_end),
        "evidence_json": json.dumps(evidence, sort_keys=True),
    }


def _alert(row: Any) -> Alert:
    ev = json.loads(row.evidence_json)
    return Alert(
        id=row.id,
        score=float(row.score),
        raised_at=float(ev["raised_at"]),
        updated_at=float(ev["updated_at"]),
        window_start=float(ev["window_start"]),
        window_end=float(ev["window_end"]),
        members=tuple(ev["members"]),
        tracks=tuple(ev["tracks"]),
        networks=tuple(ev["networks"]),
        devices=tuple(ev["devices"]),
        signals={k: float(v) for k, v in ev["signals"].items()},
    )


def _key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        role=Role(row.role),
        artist_id=ArtistId(row.artist_id) if row.artist_id else None,
        label=row.label,
        created_at=from_us(row.created_us),
        revoked_at=opt_from_us(row.revoked_us),
    )


__all__ = ["SqlStore"]
