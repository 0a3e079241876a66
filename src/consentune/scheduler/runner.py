"""One scheduler per deployment: every worker ticks, only the leader runs jobs, each job once per period.

The leader lease (``scheduler-leader``, renewed every tick, expiring after
``lease_ttl_s``) picks the one worker that runs periodic jobs, so the ledger
checkpoints are signed by one process.  Each job's due time is claimed in
the database as well, so a job still runs once per period when leadership
moves (the old leader's lease ran out mid-period, or it was restarted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from consentune.observe import NULL_OBSERVER, Observer

LEADER_LEASE = "scheduler-leader"
logger = logging.getLogger("consentune.scheduler")


class Leases(Protocol):
    def acquire(self, name: str, *, holder: str, ttl_s: float, now_us: int) -> bool: ...

    def release(self, name: str, *, holder: str) -> None: ...

    def claim_due(self, job: str, *, holder: str, period_s: float, now_us: int) -> int | None: ...


@dataclass(frozen=True)
class Job:
    """``run`` every ``period_s`` seconds, once per deployment."""

    name: str
    period_s: float
    run: Callable[[], object]


def worker_name() -> str:
    """Host, pid and a random tag: unique across machines and restarts, readable in the leases table."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    def __init__(
        self,
        leases: Leases,
        jobs: list[Job],
        *,
        holder: str | None = None,
        lease_ttl_s: float = 30.0,
        observer: Observer = NULL_OBSERVER,
        on_leadership: Callable[[bool], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._leases = leases
        self._jobs = jobs
        self.holder = holder or worker_name()
        self._ttl_s = lease_ttl_s
        self._observer = observer
        self._on_leadership = on_leadership
        self._clock = clock
        self.is_leader = False

    def tick(self) -> list[tuple[str, int]]:
        """Renew or take the lease; if leading, run the due jobs.  Returns (job, due time µs) per run."""
        leading = self._leases.acquire(LEADER_LEASE, holder=self.holder, ttl_s=self._ttl_s, now_us=self._now_us())
        if leading != self.is_leader:
            self.is_leader = leading
            logger.info("scheduler leadership %s", "taken" if leading else "lost", extra={"holder": self.holder})
            if self._on_leadership is not None:
                self._on_leadership(leading)
        if not leading:
            return []
        ran = []
        for job in self._jobs:
            due = self._leases.claim_due(f"job:{job.name}", holder=self.holder, period_s=job.period_s,
                                         now_us=self._now_us())  # fmt: skip
            if due is not None:
                self._run(job)
                ran.append((job.name, due))
        return ran

    def release(self) -> None:
        """Step down (on shutdown) so another worker takes over without waiting for the lease to expire."""
        if self.is_leader:
            self._leases.release(LEADER_LEASE, holder=self.holder)
            self.is_leader = False
            if self._on_leadership is not None:
                self._on_leadership(False)

    async def run_forever(self, interval_s: float) -> None:
        """Tick every ``interval_s`` in a thread (jobs block); step down when cancelled.

        A tick already running when the task is cancelled is waited for (a thread cannot be stopped): the
        lease is released only after its jobs end, so another worker cannot start the same job meanwhile,
        and the caller does not close the service under a running job."""
        ticking: asyncio.Task[list[tuple[str, int]]] | None = None
        try:
            while True:
                ticking = asyncio.ensure_future(asyncio.to_thread(self.tick))
                try:
                    await asyncio.shield(ticking)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the database may be briefly away; the next tick retries
                    logger.exception("scheduler tick failed; retrying in %.1f s", interval_s)
                await asyncio.sleep(interval_s)
        finally:
            if ticking is not None and not ticking.done():
                with contextlib.suppress(Exception):
                    await ticking
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.release)

    def _run(self, job: Job) -> None:
        started = time.perf_counter()
        ok = True
        try:
            job.run()
        except Exception:  # one failed run must not stop the scheduler; the next period retries
            ok = False
            logger.exception("periodic job %s failed", job.name)
        self._observer.job_ran(job.name, seconds=time.perf_counter() - started, ok=ok)

    def _now_us(self) -> int:
        return round(self._clock() * 1e6)


__all__ = ["LEADER_LEASE", "Job", "Leases", "Scheduler", "worker_name"]
