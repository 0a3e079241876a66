"""Job and task records, and the ports a job needs: its state store and an execution engine."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from consentune.types import TrackId

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TASK_PENDING, TASK_DONE = "pending", "done"


@dataclass(frozen=True, slots=True)
class Job:
    """A batch job: ``tasks`` batches over ``tracks`` tracks; counts summed over finished tasks."""

    id: int
    kind: str
    status: str
    engine: str
    actor: str
    params: Mapping[str, Any]
    tasks: int
    tracks: int
    tasks_done: int
    done: int  # tracks whose results were kept
    refused: int  # tracks refused by consent (at grant, in the worker, or at write-back)
    failed: int  # tracks that could not be processed (e.g. undecodable audio)
    compute_s: float  # worker wall time summed over finished tasks
    cpu_s: float  # worker CPU time summed over finished tasks (what the work costs, whatever the contention)
    driver: str | None
    heartbeat_at: datetime | None
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Task:
    job_id: int
    seq: int
    tracks: tuple[TrackId, ...]
    status: str
    attempts: int


@dataclass(frozen=True, slots=True)
class TaskResult:
    """What the driver records when a task's results were written back."""

    done: int
    refused: int
    failed: int
    compute_ms: int
    cpu_ms: int
    node: str


class JobRepo(Protocol):
    def create_job(
        self, *, kind: str, engine: str, actor: str, params: Mapping[str, Any], batches: Sequence[Sequence[TrackId]],
        at: datetime,
    ) -> Job: ...  # fmt: skip
    def get_job(self, job_id: int) -> Job | None: ...
    def list_jobs(self, *, limit: int = 50) -> list[Job]: ...
    def claim_job(self, job_id: int, *, driver: str, expected: str | None, engine: str, at: datetime) -> bool: ...
    def set_job_status(self, job_id: int, status: str, *, at: datetime, error: str | None = None) -> None: ...
    def job_status(self, job_id: int) -> str | None: ...
    def pending_tasks(self, job_id: int) -> list[Task]: ...
    def start_task(self, job_id: int, seq: int) -> None: ...
    def finish_task(self, job_id: int, seq: int, result: TaskResult, *, at: datetime) -> None: ...


P = TypeVar("P")
R = TypeVar("R")


class Engine(Protocol):
    """Runs a pure function over payloads on some workers; results come back as they finish.

    ``payloads`` is pulled lazily, at most ``window`` in flight, so the
    driver grants a batch only just before a worker can take it.
    """

    name: str

    @property
    def workers(self) -> int: ...

    def run(self, fn: Callable[[P], R], payloads: Iterable[P], *, window: int) -> Iterator[R]: ...

    def close(self) -> None: ...


__all__ = [
    "CANCELLED",
    "DONE",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "TASK_DONE",
    "TASK_PENDING",
    "Engine",
    "Job",
    "JobRepo",
    "Task",
    "TaskResult",
]
