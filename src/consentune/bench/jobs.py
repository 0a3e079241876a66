"""``consentune bench jobs``: analyze + fingerprint backfill throughput per engine, in one run.

Peers run on the same synthesized catalogue in the same process, in turn,
round after round: the local engine with 1 and with 2 workers, and the Ray
engine on a 2-node cluster started on this machine (one CPU per node).
Engine start-up and model loading are excluded (each engine is warmed
first); the gate, ledger appends, database writes and index writes are
included.

Goals (issue 15): 2 local workers >= 1.8x one worker; Ray >= 0.85x local
with the same number of CPUs.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from consentune.config import Settings
from consentune.demo.synth import STYLES, SongSpec, encode, synthesize
from consentune.engines import LocalEngine
from consentune.jobs import Engine
from consentune.service import Consentune, open_service
from consentune.storage import tables
from consentune.types import TrackId

GOALS = {"local_2_vs_1": 1.8, "ray_vs_local_2": 0.85}
ACTOR = "service:bench-jobs"


def run_jobs_bench(
    *,
    tracks: int = 24,
    duration_s: float = 6.0,
    batch: int = 2,
    rounds: int = 3,
    database_url: str | None = None,
    ray: bool = True,
    progress: Callable[[str], object] = lambda _m: None,
) -> dict[str, Any]:
    """Backfill ``tracks`` synthesized songs of ``duration_s`` seconds on every engine; JSON-ready figures.

    All engines are started and warmed first, then run in turn for
    ``rounds`` rounds; each engine's figure is its median round, so a
    burst of load from other processes on a shared machine hits every peer
    alike instead of skewing one ratio.
    """
    with tempfile.TemporaryDirectory(prefix="consentune-bench-jobs-") as tmp, contextlib.ExitStack() as stack:
        home = Path(tmp)
        settings = Settings(
            home=home, database_url=database_url or f"sqlite:///{home / 'bench.db'}", identify_at_ingest=False
        )
        svc = open_service(settings)
        stack.callback(svc.close)
        progress(f"synthesizing and ingesting {tracks} tracks of {duration_s:.0f} s")
        ids = _catalogue(svc, tracks, duration_s)
        engines = _start_engines(stack, ray=ray, progress=progress)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in engines}
        for round_no in range(1, rounds + 1):
            for name, engine in engines.items():
                run = _backfill(svc, engine, ids, batch)
                runs[name].append(run)
                progress(f"round {round_no}/{rounds} {name}: {run['tracks_per_s']:.2f} tracks/s")
        results: dict[str, Any] = {
            "backend": svc.store.engine.dialect.name,
            "tracks": tracks,
            "track_seconds": duration_s,
            "tracks_per_task": batch,
            "rounds": rounds,
            "runs": {name: _median_run(rs) for name, rs in runs.items()},
            "all_rounds_tracks_per_s": {name: [r["tracks_per_s"] for r in rs] for name, rs in runs.items()},
        }
        if "ray-2-nodes" in engines:
            results["runs"]["ray-2-nodes"]["nodes"] = engines["ray-2-nodes"].nodes()  # type: ignore[attr-defined]
    results.update(_ratios(results["runs"]))
    return results


def _start_engines(stack: contextlib.ExitStack, *, ray: bool, progress: Callable[[str], object]) -> dict[str, Engine]:
    engines: dict[str, Engine] = {}
    for name, workers in (("local-1", 1), ("local-2", 2)):
        progress(f"{name}: starting {workers} worker process(es)")
        local = LocalEngine(workers=workers, own_sessions=True)  # each Ray node runs in its own session too
        stack.callback(local.close)
        local.warm()
        engines[name] = local
    if ray:
        from consentune.engines.ray import RayEngine
        from consentune.engines.ray_cluster import LocalRayCluster

        progress("ray-2-nodes: starting a head and a second node (1 CPU each)")
        cluster = stack.enter_context(LocalRayCluster(nodes=2, cpus_per_node=1))
        remote = RayEngine(address=cluster.address)
        stack.callback(remote.close)
        remote.wait_for_nodes(2)
        remote.warm()
        engines["ray-2-nodes"] = remote
    return engines


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: float(r["tracks_per_s"]))[len(runs) // 2]


def _catalogue(svc: Consentune, count: int, duration_s: float) -> list[TrackId]:
    artist = svc.catalog.add_artist("Bench Artist", actor=ACTOR)
    ids = []
    for i in range(count):
        spec = SongSpec(seed=1000 + i, duration_s=duration_s, style=STYLES[i % len(STYLES)])
        data = encode(synthesize(spec), spec.sample_rate, format="wav")
        ids.append(
            svc.catalog.ingest(data, filename=f"{i}.wav", artist=artist, title=f"bench {i}", actor=ACTOR).track.id
        )
    return ids


def _backfill(svc: Consentune, engine: Engine, ids: list[TrackId], batch: int) -> dict[str, Any]:
    """Analyze then fingerprint every track as two jobs; wall time covers both."""
    entries_before, appends_before = svc.ledger.size, _appends(svc)
    wall = compute = cpu = 0.0
    tasks = 0
    for kind in ("analyze", "fingerprint"):
        job = svc.jobs.create(kind, ids, actor=ACTOR, engine=engine.name, batch=batch)
        started = time.perf_counter()
        ended = svc.jobs.run(job.id, engine=engine)
        wall += time.perf_counter() - started
        if ended.done != len(ids):
            raise RuntimeError(f"{kind} job {job.id} processed {ended.done} of {len(ids)} tracks: {ended.error}")
        compute += ended.compute_s
        cpu += ended.cpu_s
        tasks += ended.tasks
    per_1000 = 1000 / len(ids)
    return {
        "engine": engine.name,
        "workers": engine.workers,
        "wall_s": wall,
        "tracks_per_s": len(ids) / wall,
        "worker_compute_s": compute,
        "tasks": tasks,
        # time a worker slot spent on anything but computing (gate, ledger, DB, transfer, idle), per task
        "overhead_per_task_ms": max(0.0, wall * engine.workers - compute) / tasks * 1000,
        "compute_per_track_s": compute / len(ids),
        # CPU the work really costs per track, and the share of a core each busy worker actually got
        "cpu_per_track_s": cpu / len(ids),
        "cpu_share_per_worker": cpu / compute if compute else 0.0,
        "ledger_entries_per_1000_tracks": (svc.ledger.size - entries_before) * per_1000,
        "ledger_appends_per_1000_tracks": (_appends(svc) - appends_before) * per_1000,
    }


def _appends(svc: Consentune) -> int:
    """Ledger appends made so far by jobs: each is keyed (``append_once``), so a resumed task appends nothing."""
    with svc.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(tables.ledger_once)).scalar() or 0)


def _ratios(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "local-1" in runs and "local-2" in runs:
        out["local_2_vs_1"] = runs["local-2"]["tracks_per_s"] / runs["local-1"]["tracks_per_s"]
    if "ray-2-nodes" in runs and "local-2" in runs:
        out["ray_vs_local_2"] = runs["ray-2-nodes"]["tracks_per_s"] / runs["local-2"]["tracks_per_s"]
    out["goals"] = {k: v for k, v in GOALS.items() if k in out}
    out["meets_goals"] = {k: out[k] >= v for k, v in GOALS.items() if k in out}
    return out


__all__ = ["GOALS", "run_jobs_bench"]
