"""``consentune bench jobs-train``: the train-recommend job against single-process training, same plays.

Plays are generated to Last.fm-like shapes (track popularity falling as a
power of rank, listener activity log-normal, a quarter of plays skipped
before 30 s) and written straight into a fresh database.  Both peers read
them through the gate and fit the serving model; the job reads partition by
partition and merges counts with numpy, the peer reads every play into a
Counter.  Each phase's peak resident memory is sampled every 50 ms.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from consentune.bench.scale_load import load_catalogue, now_us
from consentune.config import Settings
from consentune.engines import LocalEngine
from consentune.jobs import JobProgress
from consentune.service import Consentune, open_service
from consentune.types import ArtistId, TrackId

ACTOR = "service:bench-jobs-train"
_CHUNK = 100_000
_DAY_US = 86_400_000_000


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakMemory:
    """Peak resident memory (MB) of this process while the context runs, sampled every 50 ms."""

    def __init__(self) -> None:
        self.base = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss_mb())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())


def _play_rows(*, plays: int, tracks: int, users: int, seed: int) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of play rows: popularity ~ 1/(rank+10)^0.9 over tracks, log-normal listener activity."""
    rng = np.random.default_rng(seed)
    track_p = 1.0 / (np.arange(tracks) + 10.0) ** 0.9
    track_cdf = np.cumsum(track_p / track_p.sum())
    activity = rng.lognormal(0.0, 1.2, users)
    user_cdf = np.cumsum(activity / activity.sum())
    end_us = now_us()
    done = 0
    while done < plays:
        n = min(_CHUNK, plays - done)
        track = np.minimum(np.searchsorted(track_cdf, rng.random(n)), tracks - 1)
        user = np.minimum(np.searchsorted(user_cdf, rng.random(n)), users - 1)
        played = end_us - rng.integers(0, 30 * _DAY_US, n)
        ms = np.where(rng.random(n) < 0.25, 12_000, 200_000)
        yield [
            (f"u{u}", f"trk_{t:016x}", int(p), int(m), None, None, None, None, None)
            for u, t, p, m in zip(user.tolist(), track.tolist(), played.tolist(), ms.tolist(), strict=True)
        ]
        done += n


def _load(svc: Consentune, *, plays: int, tracks: int, users: int, progress: Callable[[str], object]) -> None:
    loaded = load_catalogue(svc, tracks=tracks, plays=0)
    owner = {TrackId(f"trk_{i:016x}"): _owner(loaded.big_artist, i) for i in range(tracks)}
    with svc.store.play_writer() as write:
        for n, rows in enumerate(_play_rows(plays=plays, tracks=tracks, users=users, seed=11)):
            write(rows, {TrackId(r[1]): owner[TrackId(r[1])] for r in rows})
            if (n + 1) % 10 == 0:
                progress(f"  loaded {(n + 1) * _CHUNK:,} plays")


def _owner(big: ArtistId, i: int) -> ArtistId:
    from consentune.bench.scale_load import BIG_ARTIST_TRACKS

    return big if i < BIG_ARTIST_TRACKS else ArtistId(f"art_{1 + (i - BIG_ARTIST_TRACKS) // 100:016x}")


def run_train_bench(
    *,
    plays: int = 1_000_000,
    tracks: int = 10_000,
    users: int = 20_000,
    partition: int = 2_000,
    single: bool = True,
    database_url: str | None = None,
    progress: Callable[[str], object] = lambda _m: None,
) -> dict[str, Any]:
    """Load the plays, run the job (and the single-process peer); JSON-ready figures."""
    with tempfile.TemporaryDirectory(prefix="consentune-bench-train-") as tmp, contextlib.ExitStack() as stack:
        home = Path(tmp)
        url = database_url or f"sqlite:///{home / 'bench.db'}"
        svc = open_service(Settings(home=home, database_url=url, identify_at_ingest=False))
        stack.callback(svc.close)
        started = time.perf_counter()
        _load(svc, plays=plays, tracks=tracks, users=users, progress=progress)
        results: dict[str, Any] = {
            "backend": svc.store.engine.dialect.name,
            "plays": plays,
            "tracks": tracks,
            "users": users,
            "partition_tracks": partition,
            "load_s": time.perf_counter() - started,
        }
        ids = [TrackId(f"trk_{i:016x}") for i in range(tracks)]
        results["job"] = _job_run(svc, ids, partition=partition, plays=plays, progress=progress)
        job = results["job"]
        progress(
            f"job: {job['wall_s']:.1f} s wall ({job['read_and_count_s']:.1f} s read+count at "
            f"{job['plays_read_per_s']:,.0f} plays/s, {job['read_cpu_s']:.1f} CPU-s; {job['fit_and_publish_s']:.1f} s "
            f"fit+publish), peak {job['peak_rss_mb']:.0f} MB (read phase {job['read_peak_rss_mb']:.0f} MB), "
            f"{job['ledger_entries']} ledger entries"
        )
        if single:
            progress("single-process `recommend train` on the same plays")
            with PeakMemory() as memory:
                began = time.perf_counter()
                report = svc.recommend.train(actor=ACTOR)
                wall = time.perf_counter() - began
            results["single"] = {
                "wall_s": wall,
                "plays_counted": report.plays,
                "peak_rss_mb": memory.peak,
                "rss_growth_mb": memory.peak - memory.base,
            }
            results["job_vs_single_wall"] = results["single"]["wall_s"] / results["job"]["wall_s"]
    return results


def _job_run(
    svc: Consentune, ids: list[TrackId], *, partition: int, plays: int, progress: Callable[[str], object]
) -> dict[str, Any]:
    entries_before = svc.ledger.size
    job = svc.jobs.create("train-recommend", ids, actor=ACTOR, batch=partition)
    progress(f"train-recommend job {job.id}: {job.tasks} partitions of {partition} tracks")
    stage: dict[str, float] = {}
    engine = LocalEngine(workers=1)  # no worker starts: partitions run on the driver
    phases = _PhaseLog(progress)
    with PeakMemory() as memory, phases:

        def step(p: JobProgress) -> None:
            if p.tasks_finished == p.tasks_total:
                stage["read_s"] = time.perf_counter() - began
                stage["read_peak_rss_mb"] = max(memory.peak, _rss_mb())
            progress(f"  partition {p.tasks_finished}/{p.tasks_total}")

        began = time.perf_counter()
        ended = svc.jobs.run(job.id, engine=engine, progress=step)
        wall = time.perf_counter() - began
    engine.close()
    return {
        "status": ended.status,
        "wall_s": wall,
        "read_and_count_s": stage.get("read_s", wall),
        "fit_and_publish_s": wall - stage.get("read_s", wall),
        "plays_read_per_s": plays / stage.get("read_s", wall),
        "read_cpu_s": ended.cpu_s,  # CPU of this process during the partitions (contention does not inflate it)
        "plays_read_per_cpu_s": plays / ended.cpu_s if ended.cpu_s else 0.0,
        "peak_rss_mb": memory.peak,
        "read_peak_rss_mb": stage.get("read_peak_rss_mb", memory.peak),
        "rss_growth_mb": memory.peak - memory.base,
        "partitions": ended.tasks,
        "ledger_entries": svc.ledger.size - entries_before,
        "fit_phases": phases.lines,
    }


class _PhaseLog(logging.Handler):
    """Passes the model's fitting phases (logged by ``consentune.recommend``) to ``progress``, with RSS."""

    def __init__(self, progress: Callable[[str], object]) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self._progress = progress
        self._loggers = [logging.getLogger(name) for name in ("consentune.recommend", "consentune.jobs.playwork")]

    def emit(self, record: logging.LogRecord) -> None:
        line = f"{record.getMessage()} (RSS {_rss_mb():.0f} MB)"
        self.lines.append(line)
        self._progress(f"  fit: {line}")

    def __enter__(self) -> _PhaseLog:
        self._levels = [logger.level for logger in self._loggers]
        for logger in self._loggers:
            logger.setLevel(logging.INFO)
            logger.addHandler(self)
        return self

    def __exit__(self, *_: object) -> None:
        for logger, level in zip(self._loggers, self._levels, strict=True):
            logger.removeHandler(self)
            logger.setLevel(level)


__all__ = ["PeakMemory", "run_train_bench"]
