"""JobService: plan batch jobs, run them on an engine with the gate inside every batch, resume them.

The driver (this class) is the only part that talks to the database: it
asks the gate for one grant per task just before a worker can take it,
sends the grant with the task, hands results back to the gate and records
the task as done.  Every step is idempotent per task (keyed ledger appends,
features replaced by key, index entries replaced by track), so a driver
killed at any point resumes from the tasks not yet recorded as done without
logging or storing anything twice.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from consentune.errors import Conflict, ConsentuneError, InvalidInput, JobFailed, NotFound
from consentune.gate import PurposeGate, WorkGrant
from consentune.identify.index import FingerprintIndex
from consentune.jobs.model import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Engine,
    Job,
    JobRepo,
    Task,
    TaskResult,
)
from consentune.jobs.playwork import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_PARTITION_TRACKS,
    PlayWork,
    play_kind,
)
from consentune.jobs.work import TaskOutput, TaskPayload, decode_postings, job_kind, run_task
from consentune.ports import FeatureRepo
from consentune.types import TrackId

DEFAULT_BATCH = 16
MAX_BATCH = 1000
MAX_PARTITION = 100_000  # tracks whose plays one partition reads
STALE_HEARTBEAT_S = 120.0  # a driver on another host silent this long is presumed dead


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Sent to the progress callback after each task: tracks finished so far out of the job's total."""

    job_id: int
    tracks_finished: int
    tracks_total: int
    tasks_finished: int
    tasks_total: int


def _utcnow() -> datetime:
    return datetime.now(UTC)


def driver_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobService:
    def __init__(
        self,
        *,
        gate: PurposeGate,
        repo: JobRepo,
        index: FingerprintIndex,
        features: FeatureRepo,
        blob_dir: Path | str,
        clock: Callable[[], datetime] = _utcnow,
        plays: PlayWork | None = None,
    ) -> None:
        """``plays`` runs the kinds over listening data (train-recommend, fraud-rescan, import-plays)."""
        self._gate = gate
        self._plays = plays
        self._repo = repo
        self._index = index
        self._features = features
        self._blob_dir = blob_dir
        self._clock = clock

    # -- planning -------------------------------------------------------------
    def create(
        self, kind: str, tracks: Sequence[TrackId], *, actor: str, engine: str = "local", batch: int = DEFAULT_BATCH
    ) -> Job:
        """Record a job and its tasks (``batch`` tracks each, in the given order); nothing runs yet.

        For ``train-recommend`` and ``fraud-rescan`` a task is a partition of
        ``batch`` tracks whose plays it reads; see :meth:`create_import` for
        ``import-plays``.
        """
        if kind == "import-plays":
            raise InvalidInput("import-plays splits a file, not tracks", hint="use JobService.create_import")
        if play_kind(kind) is None:
            job_kind(kind)
        most = MAX_PARTITION if play_kind(kind) is not None else MAX_BATCH
        if not 1 <= batch <= most:
            raise InvalidInput(f"batch={batch} tracks per task", hint=f"use 1..{most}")
        unique = list(dict.fromkeys(tracks))
        batches = [unique[i : i + batch] for i in range(0, len(unique), batch)]
        params = {"batch": batch}
        return self._repo.create_job(
            kind=kind, engine=engine, actor=actor, params=params, batches=batches, at=self._clock()
        )

    def create_import(
        self, path: Path, *, actor: str, engine: str = "local", chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> Job:
        """Record an ``import-plays`` job: one task per ``chunk_bytes`` of the CSV file (lines start-aligned)."""
        chunks = PlayWork.plan_chunks(path, chunk_bytes=chunk_bytes)
        params = {"file": str(path.resolve()), "chunk_bytes": chunk_bytes, "bytes": path.stat().st_size}
        return self._repo.create_job(
            kind="import-plays", engine=engine, actor=actor, params=params, batches=[[]] * chunks, at=self._clock()
        )

    def pending(self, kind: str, tracks: Sequence[TrackId]) -> list[TrackId]:
        """The tracks a ``kind`` job has not processed yet (no stored result; reads no content)."""
        if play_kind(kind) is not None:
            return list(tracks)  # plays change all the time: every partition is read again
        spec = job_kind(kind)
        if spec.feature_kind is None:
            return [t for t in tracks if not self._index.contains(t)]
        done = set(self._features.feature_tracks().get(spec.purpose, []))
        return [t for t in tracks if t not in done]

    # -- running --------------------------------------------------------------
    def run(
        self,
        job_id: int,
        *,
        engine: Engine,
        progress: Callable[[JobProgress], None] | None = None,
        force: bool = False,
    ) -> Job:
        """Run (or resume) a job's unfinished tasks on ``engine``; returns the job as it ended.

        A job another live driver is running is refused (:class:`Conflict`)
        unless ``force``; one whose driver died is taken over.
        """
        job = self._claim(job_id, engine=engine.name, force=force)
        if play_kind(job.kind) is not None:
            return self._run_plays(job, workers=engine.workers, progress=progress)
        kind = job_kind(job.kind)
        pending = self._repo.pending_tasks(job_id)
        finished = [job.tasks_done, job.done + job.refused + job.failed]  # tasks, tracks
        denied: dict[int, int] = {}
        grants: dict[int, WorkGrant] = {}

        def record(seq: int, result: TaskResult) -> None:
            self._repo.finish_task(job_id, seq, result, at=self._clock())
            finished[0] += 1
            finished[1] += result.done + result.refused + result.failed
            if progress is not None:
                progress(JobProgress(job_id, finished[1], job.tracks, finished[0], job.tasks))

        def payloads() -> Iterator[TaskPayload]:
            for task in pending:
                if self._repo.job_status(job_id) == CANCELLED:
                    return
                batch = self._gate.grant_work(
                    actor=job.actor, purpose=kind.purpose, tracks=task.tracks, key=f"job:{job_id}/task:{task.seq}"
                )
                self._repo.start_task(job_id, task.seq)
                if not batch.grant.items:  # every track refused: nothing for a worker to do
                    record(task.seq, TaskResult(0, len(batch.denied), 0, 0, 0, "driver"))
                    continue
                denied[task.seq] = len(batch.denied)
                grants[task.seq] = batch.grant
                yield TaskPayload(kind.name, task.seq, str(self._blob_dir), self._gate.grant_verify_key, batch.grant)

        with self._failing_resumably(job_id):
            for output in engine.run(run_task, payloads(), window=max(1, engine.workers) * 2):
                record(output.seq, self._write_back(kind.name, grants.pop(output.seq), output, denied.pop(output.seq)))
        return self._ended(job_id)

    def _ended(self, job_id: int) -> Job:
        if self._repo.job_status(job_id) != CANCELLED:
            status = DONE if not self._repo.pending_tasks(job_id) else FAILED
            self._repo.set_job_status(job_id, status, at=self._clock())
        return self.get(job_id)

    @contextlib.contextmanager
    def _failing_resumably(self, job_id: int) -> Iterator[None]:
        """Record why a job stopped (KeyboardInterrupt included); it stays resumable."""
        try:
            yield
        except BaseException as exc:
            self._repo.set_job_status(job_id, FAILED, at=self._clock(), error=f"{type(exc).__name__}: {exc}"[:2000])
            if isinstance(exc, ConsentuneError) or not isinstance(exc, Exception):
                raise
            raise JobFailed(
                f"job {job_id} stopped: {type(exc).__name__}: {exc}",
                hint=f"finished tasks are kept; continue with `consentune jobs resume {job_id}`",
            ) from exc

    def _run_plays(self, job: Job, *, workers: int, progress: Callable[[JobProgress], None] | None) -> Job:
        """Partitions on the driver, on up to ``workers`` threads (the database and the gate do the work)."""
        work = self._plays
        if work is None:
            raise InvalidInput(
                f"{job.kind} jobs are not wired in this service", hint="open the service with open_service"
            )
        finished = [job.tasks_done, job.done + job.refused + job.failed]
        lock = threading.Lock()

        def one(task: Task) -> None:
            if self._repo.job_status(job.id) == CANCELLED:
                return
            self._repo.start_task(job.id, task.seq)
            result = work.run_task(job, task)
            with lock:
                self._repo.finish_task(job.id, task.seq, result, at=self._clock())
                finished[0] += 1
                finished[1] += result.done + result.refused + result.failed
                if progress is not None:
                    progress(JobProgress(job.id, finished[1], job.tracks, finished[0], job.tasks))

        with self._failing_resumably(job.id):
            pending = self._repo.pending_tasks(job.id)
            threads = max(1, workers)  # partitions are independent: own grant, own file or transaction
            if threads == 1:
                for task in pending:
                    one(task)
            else:
                pool = ThreadPoolExecutor(max_workers=threads)
                try:
                    for future in [pool.submit(one, task) for task in pending]:
                        future.result()
                finally:  # a failed part stops the job: parts not started yet are dropped, not run
                    pool.shutdown(wait=True, cancel_futures=True)
            if self._repo.job_status(job.id) != CANCELLED and not self._repo.pending_tasks(job.id):
                work.finish(self.get(job.id))
                work.clean(job.id)
        return self._ended(job.id)

    def _write_back(self, kind_name: str, grant: WorkGrant, output: TaskOutput, denied: int) -> TaskResult:
        kind = job_kind(kind_name)
        outputs = dict(output.outputs)
        kept = self._gate.accept_work(grant, outputs, feature_kind=kind.feature_kind)
        if kind.feature_kind is None:
            self._index.add([decode_postings(t, outputs[t]) for t in kept])
        refused = denied + len(output.refused) + (len(outputs) - len(kept))
        compute_ms, cpu_ms = round(output.compute_s * 1000), round(output.cpu_s * 1000)
        return TaskResult(len(kept), refused, len(output.failed), compute_ms, cpu_ms, output.node)

    def _claim(self, job_id: int, *, engine: str, force: bool) -> Job:
        job = self.get(job_id)
        if job.status == DONE:
            raise Conflict(f"job {job_id} is already done", hint="create a new job to process the tracks again")
        if job.status == CANCELLED:
            raise Conflict(f"job {job_id} was cancelled", hint="create a new job")
        if job.status == RUNNING and not force and self._driver_alive(job):
            raise Conflict(
                f"job {job_id} is being run by {job.driver}",
                hint="wait for it, or pass --force if that driver is gone",
            )
        if not self._repo.claim_job(job_id, driver=driver_name(), expected=job.driver, engine=engine, at=self._clock()):
            raise Conflict(f"another driver took job {job_id} just now", hint="see `consentune jobs show`")
        return self.get(job_id)

    def _driver_alive(self, job: Job) -> bool:
        if job.driver is None:
            return False
        host, _, pid = job.driver.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        if job.heartbeat_at is None:
            return False
        return (self._clock() - job.heartbeat_at).total_seconds() < STALE_HEARTBEAT_S

    # -- reading and control ----------------------------------------------------
    def get(self, job_id: int) -> Job:
        job = self._repo.get_job(job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found", hint="list jobs with `consentune jobs list`")
        return job

    def resumable(self, job_id: int) -> bool:
        """True when ``jobs resume`` would take the job now: not finished or cancelled, no live driver."""
        job = self.get(job_id)
        if job.status in (DONE, CANCELLED):
            return False
        return job.status != RUNNING or not self._driver_alive(job)

    def list(self, *, limit: int = 50) -> list[Job]:
        return self._repo.list_jobs(limit=limit)

    def cancel(self, job_id: int) -> Job:
        """Stop a job: its driver grants no further task (tasks already running finish and are kept)."""
        job = self.get(job_id)
        if job.status in (DONE, CANCELLED):
            raise Conflict(f"job {job_id} is already {job.status}", hint="nothing to cancel")
        self._repo.set_job_status(job_id, CANCELLED, at=self._clock())
        return self.get(job_id)


__all__ = ["DEFAULT_BATCH", "DEFAULT_PARTITION_TRACKS", "QUEUED", "JobProgress", "JobService", "driver_name"]
