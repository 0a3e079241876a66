"""Batch jobs: analyze and fingerprint a catalogue on an engine, with the purpose gate inside every batch.

See ``docs/jobs.md``.  This package never imports an engine (Ray or a
process pool): engines are adapters in :mod:`consentune.engines`.
"""

from consentune.jobs.model import Engine, Job, JobRepo, Task, TaskResult
from consentune.jobs.service import DEFAULT_BATCH, JobProgress, JobService
from consentune.jobs.work import KINDS, TaskOutput, TaskPayload, run_task

__all__ = [
    "DEFAULT_BATCH",
    "KINDS",
    "Engine",
    "Job",
    "JobProgress",
    "JobRepo",
    "JobService",
    "Task",
    "TaskOutput",
    "TaskPayload",
    "TaskResult",
    "run_task",
]
