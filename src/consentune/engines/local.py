"""LocalEngine: a process pool over this machine's cores (the default engine)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import TypeVar

from consentune.errors import InvalidInput
from consentune.jobs.work import warm_up

P = TypeVar("P")
R = TypeVar("R")


class LocalEngine:
    """Runs tasks in ``workers`` spawned processes (spawned, not forked: the driver holds DB connections)."""

    name = "local"

    def __init__(self, *, workers: int | None = None, own_sessions: bool = False) -> None:
        """``own_sessions`` puts each worker in its own session, as each Ray node is: a kernel with
        autogroup scheduling then shares CPU between them as between separate jobs rather than
        giving the whole pool one session's share (used by ``consentune bench jobs``)."""
        count = workers or os.cpu_count() or 1
        if count < 1:
            raise InvalidInput(f"workers={count}", hint="use at least one worker")
        self._workers = count
        self._pool = ProcessPoolExecutor(
            max_workers=count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=os.setsid if own_sessions else None,
        )

    @property
    def workers(self) -> int:
        return self._workers

    def warm(self) -> list[str]:
        """Start every worker and load the analysis models, so start-up stays out of measurements."""
        return list(self._pool.map(warm_up, range(self._workers)))

    def run(self, fn: Callable[[P], R], payloads: Iterable[P], *, window: int) -> Iterator[R]:
        pending = iter(payloads)
        inflight: set[Future[R]] = set()

        def top_up() -> None:
            while len(inflight) < window:
                payload = next(pending, _END)
                if payload is _END:
                    return
                inflight.add(self._pool.submit(fn, payload))  # type: ignore[arg-type]

        try:
            top_up()
            while inflight:
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                inflight.difference_update(finished)
                top_up()  # keep workers busy while the driver writes results back
                for future in finished:
                    yield future.result()
        finally:
            for future in inflight:
                future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


_END = object()

__all__ = ["LocalEngine"]
