"""Batch jobs: analyze and fingerprint a catalogue on an engine, train, rescan and import plays in partitions,
with the purpose gate inside every batch.

See ``docs/jobs.md``.  This package never imports an engine (Ray or a
process pool): engines are adapters in :mod:`consentune.engines`.
"""

from consentune.jobs.model import Engine, Job, JobRepo, Task, TaskResult
from consentune.jobs.playwork import PLAY_KINDS, ImportCounts, PlaySinks, PlayWork
from consentune.jobs.service import DEFAULT_BATCH, JobProgress, JobService
from consentune.jobs.work import KINDS, TaskOutput, TaskPayload, run_task

__all__ = [
    "DEFAULT_BATCH",
    "KINDS",
    "PLAY_KINDS",
    "Engine",
    "ImportCounts",
    "Job",
    "JobProgress",
    "JobRepo",
    "JobService",
    "PlaySinks",
    "PlayWork",
    "Task",
    "TaskOutput",
    "TaskPayload",
    "TaskResult",
    "run_task",
]
