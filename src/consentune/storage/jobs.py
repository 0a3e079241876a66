"""SqlJobStore: job and task state (:class:`consentune.jobs.JobRepo`) on SQLite or PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, case, func, insert, select, update

from consentune.jobs.model import QUEUED, RUNNING, TASK_DONE, TASK_PENDING, Job, Task, TaskResult
from consentune.storage import tables as t
from consentune.storage.timeutil import from_us, opt_from_us, to_us
from consentune.types import TrackId

_TASK_ROWS_PER_INSERT = 5_000


class SqlJobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_job(
        self,
        *,
        kind: str,
        engine: str,
        actor: str,
        params: Mapping[str, Any],
        batches: Sequence[Sequence[TrackId]],
        at: datetime,
    ) -> Job:
        now = to_us(at)
        with self.engine.begin() as conn:
            inserted = conn.execute(
                insert(t.jobs).values(
                    kind=kind,
                    status=QUEUED,
                    engine=engine,
                    actor=actor,
                    params_json=json.dumps(dict(params)),
                    tasks=len(batches),
                    tracks=sum(len(b) for b in batches),
                    created_us=now,
                    updated_us=now,
                )
            ).inserted_primary_key
            assert inserted is not None
            job_id = int(inserted[0])
            rows = [
                {
                    "job_id": job_id,
                    "seq": seq,
                    "tracks_json": json.dumps(list(batch)),
                    "status": TASK_PENDING,
                    "attempts": 0,
                    "done": 0,
                    "refused": 0,
                    "failed": 0,
                    "compute_ms": 0,
                    "cpu_ms": 0,
                }
                for seq, batch in enumerate(batches)
            ]
            for start in range(0, len(rows), _TASK_ROWS_PER_INSERT):
                conn.execute(insert(t.job_tasks), rows[start : start + _TASK_ROWS_PER_INSERT])
        job = self.get_job(int(job_id))
        assert job is not None
        return job

    def get_job(self, job_id: int) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).first()
            if row is None:
                return None
            sums = conn.execute(_task_sums().where(t.job_tasks.c.job_id == job_id)).first()
        return _job(row, sums)

    def list_jobs(self, *, limit: int = 50) -> list[Job]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.jobs).order_by(t.jobs.c.id.desc()).limit(limit)).all()
            ids = [r.id for r in rows]
            sums = {
                s.job_id: s
                for s in conn.execute(
                    _task_sums(t.job_tasks.c.job_id).where(t.job_tasks.c.job_id.in_(ids)).group_by(t.job_tasks.c.job_id)
                )
            }
        return [_job(r, sums.get(r.id)) for r in rows]

    def claim_job(self, job_id: int, *, driver: str, expected: str | None, engine: str, at: datetime) -> bool:
        """Become the job's driver if nobody else became it since we looked (compare and set)."""
        j = t.jobs
        same = j.c.driver.is_(None) if expected is None else j.c.driver == expected
        with self.engine.begin() as conn:
            result = conn.execute(
                update(j)
                .where(and_(j.c.id == job_id, same))
                .values(
                    driver=driver,
                    engine=engine,
                    status=RUNNING,
                    error=None,
                    heartbeat_us=to_us(at),
                    updated_us=to_us(at),
                )
            )
        return int(result.rowcount or 0) == 1

    def set_job_status(self, job_id: int, status: str, *, at: datetime, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(t.jobs).where(t.jobs.c.id == job_id).values(status=status, error=error, updated_us=to_us(at))
            )

    def job_status(self, job_id: int) -> str | None:
        with self.engine.connect() as conn:
            found = conn.execute(select(t.jobs.c.status).where(t.jobs.c.id == job_id)).scalar()
        return None if found is None else str(found)

    def pending_tasks(self, job_id: int) -> list[Task]:
        jt = t.job_tasks
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(jt).where(and_(jt.c.job_id == job_id, jt.c.status == TASK_PENDING)).order_by(jt.c.seq)
            ).all()
        return [
            Task(
                int(r.job_id),
                int(r.seq),
                tuple(TrackId(x) for x in json.loads(r.tracks_json)),
                r.status,
                int(r.attempts),
            )
            for r in rows
        ]

    def start_task(self, job_id: int, seq: int) -> None:
        jt = t.job_tasks
        with self.engine.begin() as conn:
            conn.execute(
                update(jt).where(and_(jt.c.job_id == job_id, jt.c.seq == seq)).values(attempts=jt.c.attempts + 1)
            )

    def finish_task(self, job_id: int, seq: int, result: TaskResult, *, at: datetime) -> None:
        """Mark a task done with its counts and beat the job's heartbeat, in one transaction."""
        jt, now = t.job_tasks, to_us(at)
        with self.engine.begin() as conn:
            conn.execute(
                update(jt)
                .where(and_(jt.c.job_id == job_id, jt.c.seq == seq))
                .values(
                    status=TASK_DONE,
                    done=result.done,
                    refused=result.refused,
                    failed=result.failed,
                    compute_ms=result.compute_ms,
                    cpu_ms=result.cpu_ms,
                    node=result.node[:200],
                    finished_us=now,
                )
            )
            conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(heartbeat_us=now, updated_us=now))


def _task_sums(*group: Any) -> Any:
    jt = t.job_tasks
    done_tasks = func.coalesce(func.sum(case((jt.c.status == TASK_DONE, 1), else_=0)), 0)
    return select(
        *group,
        done_tasks.label("tasks_done"),
        func.coalesce(func.sum(jt.c.done), 0).label("done"),
        func.coalesce(func.sum(jt.c.refused), 0).label("refused"),
        func.coalesce(func.sum(jt.c.failed), 0).label("failed"),
        func.coalesce(func.sum(jt.c.compute_ms), 0).label("compute_ms"),
        func.coalesce(func.sum(jt.c.cpu_ms), 0).label("cpu_ms"),
    )


def _job(row: Any, sums: Any) -> Job:
    return Job(
        id=int(row.id),
        kind=row.kind,
        status=row.status,
        engine=row.engine,
        actor=row.actor,
        params=json.loads(row.params_json),
        tasks=int(row.tasks),
        tracks=int(row.tracks),
        tasks_done=int(sums.tasks_done) if sums else 0,
        done=int(sums.done) if sums else 0,
        refused=int(sums.refused) if sums else 0,
        failed=int(sums.failed) if sums else 0,
        compute_s=int(sums.compute_ms) / 1000 if sums else 0.0,
        cpu_s=int(sums.cpu_ms) / 1000 if sums else 0.0,
        driver=row.driver,
        heartbeat_at=opt_from_us(row.heartbeat_us),
        error=row.error,
        created_at=from_us(row.created_us),
        updated_at=from_us(row.updated_us),
    )


__all__ = ["SqlJobStore"]
