"""Jobs: run through the gate, stop a revoked track within one batch, cancel, resume after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consentune.engines import LocalEngine
from consentune.errors import Conflict, JobFailed
from consentune.jobs import JobProgress
from consentune.organize import FEATURE_KIND
from consentune.service import Consentune
from consentune.types import ORGANIZE, TrackId

ACTOR = "service:jobs-test"
SRC = Path(__file__).resolve().parents[2] / "src"


def _job_entries(svc: Consentune, job_id: int) -> list[tuple[str, str | None, str]]:
    marker = f"job:{job_id}/"
    return [(e.action, e.track, e.decision) for e in svc.ledger.entries(range(svc.ledger.size)) if marker in e.reason]


def test_a_job_processes_allowed_tracks_with_one_ledger_append_per_task(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine
) -> None:
    svc.consent.set(svc.catalog.artist("Bo"), purpose=ORGANIZE, allow=False, actor="artist:bo")
    job = svc.jobs.create("analyze", catalogue["order"], actor=ACTOR, batch=3)
    assert (job.status, job.tasks, job.tracks) == ("queued", 3, 8)
    seen: list[JobProgress] = []
    ended = svc.jobs.run(job.id, engine=local_engine, progress=seen.append)
    assert (ended.status, ended.tasks_done, ended.done, ended.refused, ended.failed) == ("done", 3, 4, 4, 0)
    assert [p.tasks_finished for p in seen] == [1, 2, 3] and seen[-1].tracks_finished == 8
    for track in catalogue["Ada"]:
        assert svc.store.get_feature(track, FEATURE_KIND) is not None
    for track in catalogue["Bo"]:
        assert svc.store.get_feature(track, FEATURE_KIND) is None
    entries = _job_entries(svc, job.id)
    assert sorted(entries) == sorted(
        [("read-audio", t, "allow") for t in catalogue["Ada"]] + [("read-audio", t, "deny") for t in catalogue["Bo"]]
    )
    with pytest.raises(Conflict, match="already done"):
        svc.jobs.run(job.id, engine=local_engine)


def test_fingerprint_job_fills_the_index(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine
) -> None:
    svc.identify.remove_tracks(catalogue["order"], actor=ACTOR)
    assert svc.jobs.pending("fingerprint", catalogue["order"]) == catalogue["order"]
    job = svc.jobs.create("fingerprint", catalogue["order"], actor=ACTOR, batch=4)
    assert svc.jobs.run(job.id, engine=local_engine).done == 8
    assert svc.jobs.pending("fingerprint", catalogue["order"]) == []
    assert all(svc.identify.index.contains(t) for t in catalogue["order"])


def test_a_revocation_mid_job_stops_that_artists_tracks_within_one_batch(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine
) -> None:
    bo = svc.catalog.artist("Bo")
    job = svc.jobs.create("analyze", catalogue["order"], actor=ACTOR, batch=2)  # tasks: (A0,B0) (A1,B1) ...
    revoked_at: list[int] = []

    def revoke_after_first(p: JobProgress) -> None:
        if p.tasks_finished == 1:
            svc.consent.set(bo, purpose=ORGANIZE, allow=False, actor="artist:bo")
            revoked_at.append(svc.ledger.size)

    ended = svc.jobs.run(job.id, engine=local_engine, progress=revoke_after_first)
    assert ended.status == "done" and ended.done == 5  # A0..A3 and B0, whose batch finished before the revocation
    for track in catalogue["Ada"]:
        assert svc.store.get_feature(track, FEATURE_KIND) is not None
    for track in catalogue["Bo"]:  # the revocation purged B0; nothing of Bo was stored after it
        assert svc.store.get_feature(track, FEATURE_KIND) is None
    after = [
        (e.action, e.track, e.decision)
        for e in svc.ledger.entries(range(revoked_at[0], svc.ledger.size))
        if f"job:{job.id}/" in e.reason and e.track in catalogue["Bo"]
    ]
    assert ("read-audio", catalogue["Bo"][-1], "deny") in after  # batches granted later leave Bo out
    assert all(decision == "deny" for _a, _t, decision in after)  # no allow for Bo once revoked
    # batches already granted at the revocation ran, but their results were discarded at write-back
    discarded = {t for a, t, _d in after if a == "write-features"}
    assert discarded and discarded <= set(catalogue["Bo"][1:3])


def test_a_cancelled_job_stops_granting_and_cannot_be_resumed(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine
) -> None:
    job = svc.jobs.create("analyze", catalogue["order"], actor=ACTOR, batch=1)

    def cancel_after_first(p: JobProgress) -> None:
        if p.tasks_finished == 1:
            svc.jobs.cancel(job.id)

    ended = svc.jobs.run(job.id, engine=local_engine, progress=cancel_after_first)
    assert ended.status == "cancelled" and ended.tasks_done < ended.tasks
    granted = {t for a, t, _d in _job_entries(svc, job.id) if a == "read-audio"}
    assert len(granted) == ended.tasks_done  # tasks in flight at the cancel finished; no new grant after it
    with pytest.raises(Conflict, match="cancelled"):
        svc.jobs.run(job.id, engine=local_engine)


def test_a_driver_killed_with_sigkill_resumes_without_duplicates(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine, tmp_path: Path
) -> None:
    tracks = catalogue["order"]
    job = svc.jobs.create("analyze", tracks, actor=ACTOR, batch=1)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "CONSENTUNE_HOME": str(svc.settings.home),
        "CONSENTUNE_DATABASE_URL": svc.settings.database_url,
    }
    code = f"from consentune.cli import main; main(['jobs', 'resume', '{job.id}', '--workers', '1'])"
    driver = subprocess.Popen(
        [sys.executable, "-c", code], env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "driver.err").open("wb"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while svc.jobs.get(job.id).tasks_done < 2:
            assert driver.poll() is None, (tmp_path / "driver.err").read_text()
            assert time.monotonic() < deadline, "the driver made no progress in 180 s"
            time.sleep(0.05)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its worker processes, mid-flight
        driver.wait(timeout=30)
    killed = svc.jobs.get(job.id)
    assert killed.status == "running" and 2 <= killed.tasks_done < killed.tasks
    ended = svc.jobs.run(job.id, engine=local_engine)
    assert (ended.status, ended.tasks_done, ended.done) == ("done", 8, 8)
    entries = _job_entries(svc, job.id)
    assert sorted(entries) == sorted(("read-audio", t, "allow") for t in tracks)  # one grant entry per track, ever
    assert all(svc.store.get_feature(t, FEATURE_KIND) is not None for t in tracks)
    with svc.store.engine.connect() as conn:
        from sqlalchemy import text

        features = conn.execute(text("select count(*) from features where kind = :k"), {"k": FEATURE_KIND}).scalar()
    assert features == len(tracks)
    assert svc.ledger.audit().ok


def test_a_killed_worker_fails_the_job_and_resume_finishes_it_once(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine
) -> None:
    tracks = catalogue["order"]
    job = svc.jobs.create("analyze", tracks, actor=ACTOR, batch=1)
    doomed = LocalEngine(workers=1)
    worker_pid = int(doomed.warm()[0].rsplit(":", 1)[1])

    def kill_worker_after_first(p: JobProgress) -> None:
        if p.tasks_finished == 1:
            os.kill(worker_pid, signal.SIGKILL)

    try:
        with pytest.raises(JobFailed, match="jobs resume"):
            svc.jobs.run(job.id, engine=doomed, progress=kill_worker_after_first)
    finally:
        doomed.close()
    stopped = svc.jobs.get(job.id)
    assert stopped.status == "failed" and stopped.error and 1 <= stopped.tasks_done < stopped.tasks
    ended = svc.jobs.run(job.id, engine=local_engine)
    assert (ended.status, ended.done) == ("done", 8)
    assert sorted(_job_entries(svc, job.id)) == sorted(("read-audio", t, "allow") for t in tracks)


def test_a_batch_the_gate_refuses_entirely_never_reaches_a_worker(
    svc: Consentune, catalogue: dict[str, list[TrackId]], local_engine: LocalEngine
) -> None:
    svc.consent.set(svc.catalog.artist("Bo"), purpose=ORGANIZE, allow=False, actor="artist:bo")
    job = svc.jobs.create("analyze", catalogue["order"], actor=ACTOR, batch=2)  # (A0,B0) (A1,B1) ...
    bo_only = svc.jobs.create("analyze", catalogue["Bo"], actor=ACTOR, batch=2)
    assert svc.jobs.run(bo_only.id, engine=local_engine).refused == 4
    assert svc.jobs.run(job.id, engine=local_engine).done == 4
    with svc.store.engine.connect() as conn:
        from sqlalchemy import text

        nodes = conn.execute(text("select job_id, node from job_tasks order by job_id, seq")).all()
    assert {n for j, n in nodes if j == bo_only.id} == {"driver"}
    assert all(n != "driver" for j, n in nodes if j == job.id)
