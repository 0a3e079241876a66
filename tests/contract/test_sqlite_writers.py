"""SQLite under concurrent writers: nobody sees "database is locked", a failed write frees the lock,
and the WAL is folded back and truncated.

Writers are threads of one service and separate OS processes on one file.
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consentune.config import Settings
from consentune.errors import StorageError
from consentune.service import Consentune, open_service
from consentune.storage import SqlStore, make_engine
from consentune.types import RECOMMEND, TRAIN_AI, Artist, PlayEvent, Track, TrackId

ROUNDS = 12


def _tracks(svc: Consentune, artist: Artist, count: int) -> list[TrackId]:
    out = []
    for i in range(count):
        track = Track(
            TrackId(f"trk_{artist.id[-8:]}{i}"), artist.id, f"t{i}", f"{i:064x}", "wav", 1.0, 44_100, 1, 10,
            datetime.now(UTC),
        )  # fmt: skip
        svc.store.add_track(track, filename="t.wav", actor="test")
        out.append(track.id)
    return out


def _mixed_writes(svc: Consentune, name: str) -> int:
    """One writer's workload: artists, consent changes, gate batches, plays; returns ledger entries written."""
    artist = svc.catalog.add_artist(name, actor="admin")
    tracks = _tracks(svc, artist, 3)
    written = 1
    for i in range(ROUNDS):
        svc.consent.set(artist, purpose=TRAIN_AI, allow=i % 2 == 0, actor=f"artist:{name}")
        written += len(tracks) * (1 if i % 2 == 0 else 2)  # a withdrawal also logs its purge per track
        svc.gate.request(actor=f"service:{name}", purpose=RECOMMEND, tracks=tracks)
        written += len(tracks)
        at = datetime.now(UTC)
        svc.store.add_plays([PlayEvent(f"u{name}", tracks[i % 3], at, 30_000)])
    return written


def _write_in_process(settings: Settings, name: str) -> None:
    svc = open_service(settings)  # every process starts on the same (possibly fresh) file
    try:
        _mixed_writes(svc, name)
    finally:
        svc.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}")


@pytest.fixture
def sqlite_service(settings: Settings) -> Iterator[Consentune]:
    svc = open_service(settings)
    yield svc
    svc.close()


def _holds_no_lock(db: Path) -> bool:
    """True if another connection can take the write lock at once (no busy wait)."""
    probe = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def test_threads_writing_at_once_all_succeed(sqlite_service: Consentune) -> None:
    errors: list[BaseException] = []
    written: list[int] = []
    before = sqlite_service.ledger.size

    def run(n: int) -> None:
        try:
            written.append(_mixed_writes(sqlite_service, f"thread{n}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sqlite_service.ledger.size == before + sum(written)
    assert sqlite_service.ledger.audit().ok


def test_processes_starting_on_one_fresh_file_and_writing_at_once_all_succeed(settings: Settings) -> None:
    ctx = mp.get_context("spawn")
    processes = [ctx.Process(target=_write_in_process, args=(settings, f"proc{n}")) for n in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    svc = open_service(settings)
    try:
        assert len(svc.consent.all_terms()) == 1  # first-run terms published once, not once per worker
        artists = svc.catalog.artists()
        assert sorted(a.name for a in artists) == ["proc0", "proc1", "proc2"]
        # terms, then per writer: artist; per round 3 consent + 3 gate entries; per withdrawal 3 purges
        assert svc.ledger.size == 1 + 3 * (1 + ROUNDS * 6 + ROUNDS // 2 * 3)
        assert svc.ledger.audit().ok
    finally:
        svc.close()


def test_a_failed_unit_of_work_rolls_back_and_frees_the_write_lock(sqlite_service: Consentune, tmp_path: Path) -> None:
    store = sqlite_service.store
    artist = sqlite_service.catalog.add_artist("Ada", actor="admin")
    (track,) = _tracks(sqlite_service, artist, 1)
    size = sqlite_service.ledger.size
    with pytest.raises(RuntimeError), store.transaction():
        store.add_plays([PlayEvent("u", track, datetime.now(UTC), 1000)])
        sqlite_service.gate.request(actor="s", purpose=RECOMMEND, tracks=[track])
        assert not _holds_no_lock(tmp_path / "c.db")  # the unit of work holds the write lock...
        raise RuntimeError("request failed half-way")
    assert _holds_no_lock(tmp_path / "c.db")  # ...and the failure released it
    assert sqlite_service.ledger.size == size and store.user_plays("u") == []
    sqlite_service.consent.set(artist, purpose=TRAIN_AI, allow=True, actor="artist:ada")  # the next writer proceeds


def test_a_writer_that_waits_past_the_busy_timeout_gets_a_typed_error(
    sqlite_service: Consentune, tmp_path: Path
) -> None:
    impatient = SqlStore(make_engine(f"sqlite:///{tmp_path / 'c.db'}", busy_timeout_ms=50))
    holder = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageError) as caught:
            impatient.add_plays([PlayEvent("u", TrackId("t"), datetime.now(UTC), 1000)])
        assert "retry" in caught.value.hint
        assert impatient.count_tracks() == 0  # readers are never blocked by the writer
        holder.execute("ROLLBACK")
        assert impatient.add_plays([PlayEvent("u", TrackId("t"), datetime.now(UTC), 1000)]) == 1
    finally:
        holder.close()
        impatient.engine.dispose()


def test_the_wal_is_checkpointed_and_truncated(sqlite_service: Consentune, tmp_path: Path) -> None:
    _mixed_writes(sqlite_service, "ada")
    wal = tmp_path / "c.db-wal"
    assert wal.stat().st_size > 0
    frames, done = sqlite_service.store.checkpoint_wal() or (-1, -1)
    assert frames == done
    assert wal.stat().st_size == 0
    with sqlite_service.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == 64 * 2**20
