"""One contract for every engine: same inputs → same features, same index, same ledger entries.

The Ray half runs on a real 2-node cluster on this machine (``ray start --head``
plus a second ``ray start --address`` node, started and stopped here).  It is
skipped without Ray installed, and fails instead under ``CI=true``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import text
from threadpoolctl import threadpool_limits

from consentune.engines import LocalEngine
from consentune.identify.service import track_postings
from consentune.identify.triplets import SAMPLE_RATE
from consentune.jobs import Engine, JobProgress
from consentune.organize import FEATURE_KIND
from consentune.organize.descriptors import analyze
from consentune.service import Consentune
from consentune.types import IDENTIFY, ORGANIZE, Purpose, TrackId
from tests.jobs.conftest import ray_or_skip

ACTOR = "service:jobs-contract"


@pytest.fixture(scope="module", params=["local", "ray-2-nodes"])
def engine(request: pytest.FixtureRequest, local_engine: LocalEngine) -> Iterator[Engine]:
    if request.param == "local":
        yield local_engine
        return
    ray_or_skip()
    from consentune.engines.ray import RayEngine
    from consentune.engines.ray_cluster import LocalRayCluster

    with LocalRayCluster(nodes=2, cpus_per_node=1) as cluster:
        ray_engine = RayEngine(address=cluster.address)
        try:
            ray_engine.wait_for_nodes(2)
            assert ray_engine.workers == 2
            ray_engine.warm()
            yield ray_engine
        finally:
            ray_engine.close()


def _expected_entries(svc: Consentune, job_id: int, purpose: Purpose, batches: list[list[TrackId]]) -> list[tuple]:
    out = []
    for seq, batch in enumerate(batches):
        decision = svc.gate.decide(purpose=purpose, tracks=batch)
        for i, track in enumerate(batch):
            ok = bool(decision.allowed[i])
            reason = f"{decision.reason_text(i)}; job:{job_id}/task:{seq}"
            out.append((ACTOR, "read-audio", purpose, track, "allow" if ok else "deny", reason))
    return out


def _job_entries(svc: Consentune, job_id: int) -> list[tuple]:
    marker = f"; job:{job_id}/"
    entries = svc.ledger.entries(range(svc.ledger.size))
    return [(e.actor, e.action, e.purpose, e.track, e.decision, e.reason) for e in entries if marker in e.reason]


def _indexed(svc: Consentune, track: TrackId, keys: np.ndarray) -> list[tuple[int, int]]:  # type: ignore[type-arg]
    """Every (key, anchor frame) posting the index holds for ``track`` among ``keys``."""
    unique = np.unique(keys)
    found = svc.identify.index.lookup(unique)
    mine = np.asarray([found.tracks[i] == track for i in found.track.tolist()], dtype=bool)
    rebuilt = (unique[found.query_row[mine]].astype(np.int64) >> 8 << 8) | found.freq[mine]
    return sorted(zip(rebuilt.tolist(), found.frame[mine].tolist(), strict=True))


def _nodes_used(svc: Consentune, job_id: int) -> set[str]:
    with svc.store.engine.connect() as conn:
        rows = conn.execute(text("select distinct node from job_tasks where job_id = :j"), {"j": job_id})
        return {str(r[0]) for r in rows}


def test_analyze_gives_the_known_features_and_ledger_on_every_engine(
    svc: Consentune, catalogue: dict[str, list[TrackId]], engine: Engine
) -> None:
    svc.consent.set(svc.catalog.artist("Bo"), purpose=ORGANIZE, allow=False, actor="artist:bo")
    tracks = catalogue["order"]
    job = svc.jobs.create("analyze", tracks, actor=ACTOR, batch=1)
    ended = svc.jobs.run(job.id, engine=engine)
    assert (ended.status, ended.done, ended.refused, ended.failed) == ("done", 4, 4, 0)
    grant = svc.gate.request(actor="test:expect", purpose=ORGANIZE, tracks=catalogue["Ada"])
    for handle in grant.allowed:  # the right answer, computed in this process
        samples, rate = svc.gate.decode_audio(handle)
        with threadpool_limits(limits=1):  # as every worker runs (BLAS summation order changes the last bits)
            expected = analyze(samples, rate).to_bytes()
        assert svc.store.get_feature(handle.track, FEATURE_KIND) == (ORGANIZE, expected)
    assert all(svc.store.get_feature(t, FEATURE_KIND) is None for t in catalogue["Bo"])
    assert _job_entries(svc, job.id) == _expected_entries(svc, job.id, ORGANIZE, [[t] for t in tracks])
    if engine.name == "ray":
        assert len(_nodes_used(svc, job.id)) >= 2  # workers on both nodes took tasks


def test_fingerprint_gives_the_known_postings_and_ledger_on_every_engine(
    svc: Consentune, catalogue: dict[str, list[TrackId]], engine: Engine
) -> None:
    tracks = catalogue["order"]
    svc.identify.remove_tracks(tracks, actor=ACTOR)
    job = svc.jobs.create("fingerprint", tracks, actor=ACTOR, batch=3)
    ended = svc.jobs.run(job.id, engine=engine)
    assert (ended.status, ended.done) == ("done", 8)
    grant = svc.gate.request(actor="test:expect", purpose=IDENTIFY, tracks=tracks)
    for handle in grant.allowed:
        samples, _ = svc.gate.decode_audio(handle, mono=True, target_sr=SAMPLE_RATE)
        expected = track_postings(handle.track, samples)
        assert expected.keys.size > 50
        pairs = sorted(zip(expected.keys.tolist(), expected.frames.tolist(), strict=True))
        assert _indexed(svc, handle.track, expected.keys) == pairs
    batches = [tracks[i : i + 3] for i in range(0, 8, 3)]
    assert _job_entries(svc, job.id) == _expected_entries(svc, job.id, IDENTIFY, batches)


@pytest.mark.parametrize("engine", ["ray-2-nodes"], indirect=True)  # the local pool fails the job instead (test_jobs)
def test_a_ray_worker_killed_mid_task_is_retried_without_duplicates(
    svc: Consentune, catalogue: dict[str, list[TrackId]], engine: Engine
) -> None:
    tracks = catalogue["order"]
    job = svc.jobs.create("analyze", tracks, actor=ACTOR, batch=1)
    killed: list[int] = []

    def kill_a_busy_worker(p: JobProgress) -> None:
        if p.tasks_finished == 1:  # the worker that just finished has already taken the next task
            pid = int(next(iter(_nodes_used(svc, job.id) - {"None"})).rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    ended = svc.jobs.run(job.id, engine=engine, progress=kill_a_busy_worker)
    assert killed and (ended.status, ended.done) == ("done", 8)
    granted = [(a, t, d) for _actor, a, _p, t, d, _r in _job_entries(svc, job.id)]
    assert sorted(granted) == sorted(("read-audio", t, "allow") for t in tracks)
    assert all(svc.store.get_feature(t, FEATURE_KIND) is not None for t in tracks)


def test_train_recommend_reads_the_same_counts_whichever_engine_is_named(
    svc: Consentune,
    catalogue: dict[str, list[TrackId]],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plays kinds run on the driver: naming Ray changes nothing in what is read, counted or logged."""
    from collections import Counter

    from tests.jobs.test_play_jobs import _organic, _spy

    plays = _organic(catalogue["order"], users=30, seed=4)
    svc.store.add_plays(plays)
    published = _spy(svc.recommend, "publish", monkeypatch, lambda *a, **k: None)
    job = svc.jobs.create("train-recommend", catalogue["order"], actor=ACTOR, engine=engine.name, batch=4)
    ended = svc.jobs.run(job.id, engine=engine)
    assert (ended.status, ended.done, ended.engine) == ("done", 8, engine.name)
    (matrix, items), _ = published[0]
    expected = Counter((p.user_id, p.track_id) for p in plays if p.ms_played >= 30_000)
    users = sorted({u for u, _ in expected})
    coo = matrix.tocoo()
    assert {(users[r], items[c]): v for r, c, v in zip(coo.row, coo.col, coo.data, strict=True)} == expected
    batches = [catalogue["order"][:4], catalogue["order"][4:]]
    logged = [(a, t, d) for _actor, a, _p, t, d, _r in _job_entries(svc, job.id) if a == "read-plays"]
    # partitions may run on parallel driver threads: each track once, allowed, whatever the order
    assert sorted(logged) == sorted(("read-plays", t, "allow") for b in batches for t in b)
