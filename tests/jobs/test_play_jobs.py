"""Jobs over listening data: train-recommend, fraud-rescan, import-plays.

Each is checked against a known answer (the counts the plays imply, the
fraud scan of the same plays, the rows of the file), with the gate's
decisions in the ledger once per partition, after an interruption too.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from consentune.engines import LocalEngine
from consentune.errors import InvalidInput
from consentune.fraud.service import scan_events
from consentune.jobs import JobProgress
from consentune.service import Consentune
from consentune.types import RECOMMEND, PlayEvent, TrackId

ACTOR = "service:play-jobs-test"
T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _organic(tracks: list[TrackId], *, users: int, seed: int) -> list[PlayEvent]:
    """Listeners with a few favourite tracks each; a quarter of the plays are skips (< 30 s)."""
    rng = random.Random(seed)
    out = []
    for u in range(users):
        favourites = rng.sample(tracks, k=rng.randint(1, min(5, len(tracks))))
        for k in range(rng.randint(2, 12)):
            ms = rng.choice((12_000, 95_000, 180_000, 240_000))
            at = T0 + timedelta(hours=rng.uniform(0, 72), microseconds=k)
            out.append(PlayEvent(f"user{u}", rng.choice(favourites), at, ms, ip=f"198.51.{u % 200}.{u % 250 + 1}"))
    return out


def _job_entries(svc: Consentune, job_id: int) -> list[tuple[str, str | None, str]]:
    marker = f"job:{job_id}/"
    entries = svc.ledger.entries(range(svc.ledger.size))
    return [(e.action, e.track, e.decision) for e in entries if marker in e.reason]


def _spy(target: Any, name: str, monkeypatch: pytest.MonkeyPatch, before: Callable[..., None]) -> list[Any]:
    """Call ``before(*args)`` and then the real method; returns the list of calls."""
    real = getattr(target, name)
    calls: list[Any] = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        before(*args, **kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapped)
    return calls


def test_train_recommend_counts_exactly_the_allowed_plays_and_publishes_one_model(
    svc: Consentune, catalogue: dict[str, list[TrackId]], monkeypatch: pytest.MonkeyPatch
) -> None:
    svc.consent.set(svc.catalog.artist("Bo"), purpose=RECOMMEND, allow=False, actor="artist:bo")
    plays = _organic(catalogue["order"], users=60, seed=7)
    svc.store.add_plays(plays)
    published = _spy(svc.recommend, "publish", monkeypatch, lambda *a, **k: None)
    job = svc.jobs.create("train-recommend", catalogue["order"], actor=ACTOR, batch=3)  # 3 partitions
    two_threads = LocalEngine(workers=2)  # partitions run on two driver threads; no worker process starts
    try:
        ended = svc.jobs.run(job.id, engine=two_threads)
    finally:
        two_threads.close()
    assert (ended.status, ended.tasks_done, ended.done, ended.refused) == ("done", 3, 4, 4)
    (matrix, items), kwargs = published[0]
    assert len(published) == 1 and sorted(items) == sorted(catalogue["Ada"])
    # the right answer: counted plays (>= 30 s) of allowed tracks, listeners in sorted order
    expected = Counter(
        (p.user_id, p.track_id) for p in plays if p.track_id in catalogue["Ada"] and p.ms_played >= 30_000
    )
    users = sorted({u for u, _ in expected})
    coo = matrix.tocoo()
    got = {(users[r], items[c]): v for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)}
    assert matrix.shape == (len(users), 4) and got == expected
    assert kwargs["plays"] == sum(expected.values()) and kwargs["refused"] == 4
    assert kwargs["model_id"].startswith("rec_") and kwargs["model_id"].endswith(f"_job{job.id}")
    served = svc.recommend.for_user(users[0], n=3, actor=ACTOR)  # the published model serves
    assert served and all(r.track in catalogue["Ada"] for r in served if r.source == "model")
    entries = _job_entries(svc, job.id)
    reads = [(t, d) for a, t, d in entries if a == "read-plays"]
    assert sorted(reads) == sorted([(t, "allow") for t in catalogue["Ada"]] + [(t, "deny") for t in catalogue["Bo"]])
    assert [a for a, _t, _d in entries if a == "train"] == ["train"]
    assert not (svc.settings.home / "jobs" / f"job-{job.id}").exists()  # partition files are removed when done


def test_train_recommend_interrupted_resumes_reads_each_partition_once_and_drops_a_revoked_track(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc.store.add_plays(_organic(catalogue["order"], users=40, seed=11))
    job = svc.jobs.create("train-recommend", catalogue["order"], actor=ACTOR, batch=2)  # (A0,B0) (A1,B1) ...

    def stop_after_two(p: JobProgress) -> None:
        if p.tasks_finished == 2:
            raise KeyboardInterrupt  # the driver dies between partitions

    with pytest.raises(KeyboardInterrupt):
        svc.jobs.run(job.id, engine=local_engine, progress=stop_after_two)
    assert svc.jobs.get(job.id).status == "failed"
    # consent for A0 (read in the first partition) is withdrawn before the job finishes
    revoked = catalogue["Ada"][0]
    svc.consent.set(svc.catalog.artist("Ada"), purpose=RECOMMEND, allow=False, actor="artist:ada", track=revoked)
    published = _spy(svc.recommend, "publish", monkeypatch, lambda *a, **k: None)
    ended = svc.jobs.run(job.id, engine=local_engine)
    assert (ended.status, ended.tasks_done) == ("done", 4)
    (_matrix, items), _ = published[0]
    assert revoked not in items and len(items) == 7
    reads = Counter(t for a, t, _d in _job_entries(svc, job.id) if a == "read-plays")
    assert reads == Counter(catalogue["order"])  # one decision per track, interruption or not


def _farm(tracks: list[TrackId]) -> list[PlayEvent]:
    """60 accounts made the same hour, one /24 network, each streaming the same tracks for 31 s, all night."""
    out = []
    made = T0 + timedelta(days=1)
    for b in range(60):
        for k in range(30):
            at = T0 + timedelta(days=1, hours=2, seconds=b * 7 + k * 180)
            out.append(
                PlayEvent(f"bot{b}", tracks[k % len(tracks)], at, 31_000, ip=f"203.0.113.{b + 1}",
                          device_id=f"dev{b % 3}", user_agent="bot/1.0", country="US", account_created_at=made)
            )  # fmt: skip
    return out


def test_fraud_rescan_stores_the_alerts_a_scan_of_each_partition_finds(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine
) -> None:
    ada, bo = catalogue["Ada"], catalogue["Bo"]
    organic = _organic(catalogue["order"], users=80, seed=3)
    everything = organic + _farm(ada[:2]) + _farm(bo)
    svc.store.add_plays(everything)
    job = svc.jobs.create("fraud-rescan", ada + bo, actor=ACTOR, batch=4)  # partitions: Ada's tracks, Bo's
    ended = svc.jobs.run(job.id, engine=local_engine)
    assert (ended.status, ended.done, ended.refused) == ("done", 8, 0)  # detect-fraud is a required purpose
    with svc.store.engine.connect() as conn:
        stored = {r[0] for r in conn.execute(text("select id from fraud_alerts"))}
    expected: set[str] = set()
    for seq, part in enumerate((ada, bo)):  # the right answer: the same scan over each partition's plays
        found, _ = scan_events([p for p in everything if p.track_id in part])
        assert found, "each farm must raise an alert, or this test proves nothing"
        expected |= {f"fa_j{job.id}t{seq}_{i}" for i in range(len(found))}
    assert stored == expected
    reads = sorted((t, d) for a, t, d in _job_entries(svc, job.id) if a == "read-plays")
    assert reads == sorted((t, "allow") for t in ada + bo)  # one logged decision per track
    # the same job resumed after it finished changes nothing; a new one keys its own alerts
    again = svc.jobs.create("fraud-rescan", ada, actor=ACTOR, batch=4)
    svc.jobs.run(again.id, engine=local_engine)
    with svc.store.engine.connect() as conn:
        count = conn.execute(text("select count(*) from fraud_alerts")).scalar()
    assert count == len(expected) + sum(1 for i in expected if "t0_" in i)


def test_train_recommend_leaves_out_exactly_the_plays_the_fraud_filter_drops(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = catalogue["Ada"]
    everything = _organic(catalogue["order"], users=50, seed=5) + _farm(ada[:2])
    svc.store.add_plays(everything)
    svc.jobs.run(svc.jobs.create("fraud-rescan", ada, actor=ACTOR, batch=4).id, engine=local_engine)
    kept = svc.fraud.without_flagged(everything)
    assert len(kept) < len(everything), "the farm must be flagged, or this test proves nothing"
    published = _spy(svc.recommend, "publish", monkeypatch, lambda *a, **k: None)
    job = svc.jobs.create("train-recommend", catalogue["order"], actor=ACTOR, batch=3)
    assert svc.jobs.run(job.id, engine=local_engine).status == "done"
    (matrix, items), _ = published[0]
    # the right answer: the single-process rule (the fraud filter over every play, then >= 30 s)
    expected = Counter((p.user_id, p.track_id) for p in kept if p.ms_played >= 30_000 and p.track_id in items)
    users = sorted({u for u, _ in expected})
    coo = matrix.tocoo()
    assert {(users[r], items[c]): v for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)} == expected


def _plays_csv(path: Path, tracks: list[TrackId], *, rows: int, seed: int) -> list[tuple[str, str, str]]:
    """A plays file with a few bad rows (unknown track, bad duration); returns the good rows' keys."""
    rng = random.Random(seed)
    good = []
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["user_id", "track_id", "played_at", "ms_played", "ip"])
        for i in range(rows):
            at = (T0 + timedelta(seconds=i * 37, microseconds=i)).isoformat()
            user = f"listener{rng.randrange(500)}"
            if i % 97 == 5:
                out.writerow([user, "trk_unknown", at, 60_000, "198.51.100.1"])
            elif i % 89 == 7:
                out.writerow([user, rng.choice(tracks), at, "-5", "198.51.100.1"])
            else:
                track = rng.choice(tracks)
                out.writerow([user, track, at, rng.choice((15_000, 200_000)), f"198.51.100.{i % 250 + 1}"])
                good.append((user, track, at))
    return good


def _stored_plays(svc: Consentune) -> int:
    with svc.store.engine.connect() as conn:
        return int(conn.execute(text("select count(*) from plays")).scalar() or 0)


def test_import_plays_in_parallel_chunks_imports_every_good_row_once(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine, tmp_path: Path
) -> None:
    path = tmp_path / "plays.csv"
    good = _plays_csv(path, catalogue["order"], rows=3_000, seed=5)
    job = svc.jobs.create_import(path, actor=ACTOR, chunk_bytes=16 * 1024)
    assert job.tasks == -(-(path.stat().st_size - len(path.open("rb").readline())) // (16 * 1024)) and job.tasks > 5
    two_threads = LocalEngine(workers=2)  # no process is started: imports run on the driver's threads
    try:
        ended = svc.jobs.run(job.id, engine=two_threads)
    finally:
        two_threads.close()
    assert (ended.status, ended.done, ended.refused) == ("done", len(good), 3_000 - len(good))
    assert _stored_plays(svc) == len(good)
    stored = {
        (p.user_id, p.track_id, p.played_at.isoformat())
        for page in svc.store.iter_plays(catalogue["order"])
        for p in page
    }
    assert stored == set(good)


def test_an_import_killed_after_its_commit_is_not_imported_again(
    svc: Consentune,
    catalogue: dict[str, list[TrackId]],
    local_engine: LocalEngine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "plays.csv"
    good = _plays_csv(path, catalogue["order"], rows=1_200, seed=9)
    job = svc.jobs.create_import(path, actor=ACTOR, chunk_bytes=8 * 1024)
    real = svc.plays.import_file
    imports: list[Path] = []

    def import_then_die(chunk: Path) -> Any:
        report = real(chunk)  # committed...
        imports.append(chunk)
        if len(imports) == 3:
            raise KeyboardInterrupt  # ...and the driver dies before recording the task as done
        return report

    monkeypatch.setattr(svc.plays, "import_file", import_then_die)
    with pytest.raises(KeyboardInterrupt):
        svc.jobs.run(job.id, engine=local_engine)
    assert svc.jobs.get(job.id).tasks_done == 2
    monkeypatch.setattr(svc.plays, "import_file", real)
    ended = svc.jobs.run(job.id, engine=local_engine)
    assert ended.status == "done" and _stored_plays(svc) == len(good)  # the third chunk landed exactly once


def test_plays_jobs_refuse_bad_input_with_what_to_do(
    svc: Consentune, local_engine: LocalEngine, tmp_path: Path
) -> None:
    parquet = tmp_path / "plays.parquet"
    parquet.write_bytes(b"PAR1")
    with pytest.raises(InvalidInput, match="CSV files only") as err:
        svc.jobs.create_import(parquet, actor=ACTOR)
    assert "consentune plays import" in err.value.hint
    with pytest.raises(InvalidInput, match="no plays file"):
        svc.jobs.create_import(tmp_path / "missing.csv", actor=ACTOR)
    with pytest.raises(InvalidInput, match="create_import"):
        svc.jobs.create("import-plays", [], actor=ACTOR)
    nothing = svc.jobs.create("train-recommend", [TrackId("trk_none")], actor=ACTOR)
    with pytest.raises(InvalidInput, match="no plays to train on"):
        svc.jobs.run(nothing.id, engine=local_engine)
    failed = svc.jobs.get(nothing.id)
    assert failed.status == "failed" and failed.error and "no plays" in failed.error


def test_an_import_driver_killed_with_sigkill_resumes_without_duplicates(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine, tmp_path: Path
) -> None:
    path = tmp_path / "plays.csv"
    good = _plays_csv(path, catalogue["order"], rows=4_000, seed=13)
    job = svc.jobs.create_import(path, actor=ACTOR, chunk_bytes=4 * 1024)
    src = Path(__file__).resolve().parents[2] / "src"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
        "CONSENTUNE_HOME": str(svc.settings.home),
        "CONSENTUNE_DATABASE_URL": svc.settings.database_url,
    }
    code = f"from consentune.cli import main; main(['jobs', 'resume', '{job.id}', '--workers', '2'])"
    err = tmp_path / "driver.err"
    driver = subprocess.Popen(
        [sys.executable, "-c", code], env=env, start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=err.open("wb"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while svc.jobs.get(job.id).tasks_done < 3:
            assert driver.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "the driver made no progress in 180 s"
            time.sleep(0.02)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # mid-import: a chunk may be committed but not recorded
        driver.wait(timeout=30)
    killed = svc.jobs.get(job.id)
    assert killed.status == "running" and killed.tasks_done < killed.tasks
    ended = svc.jobs.run(job.id, engine=local_engine, force=True)
    assert ended.status == "done" and _stored_plays(svc) == len(good)
