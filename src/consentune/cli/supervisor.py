"""Worker processes for ``serve --workers N``, each accepting on its own socket.

With one listening socket shared by every worker, each worker's event loop
accepts all the connections pending when it wakes up, so the first worker
to wake can take most of a burst of new connections and keep them for as
long as the clients keep them alive: two workers served little more than
one.  Here every worker listens on its own ``SO_REUSEPORT`` socket bound to
the same port, and the kernel spreads new connections over them by address
hash.  A worker that dies is replaced on *its* socket, so connections
waiting in that socket's queue are served by the replacement, not reset.

A worker can also hang without dying: a request stuck in the event loop, a
stopped or swapped-out process.  The connections its socket receives would
then wait forever, so each worker's event loop stamps a shared clock about
ten times a second and a worker whose stamp is older than ``hang_s`` is
killed and replaced like a dead one.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from consentune.errors import StorageError

_log = logging.getLogger("uvicorn.error")
STOP_GRACE_S = 15.0  # how long stopping workers get to finish their requests before they are killed
HANG_S = 30.0  # default: a serving worker whose event loop has not run for this long is killed and replaced


class _BeatingServer(uvicorn.Server):
    """uvicorn's server, stamping ``beat`` (CLOCK_MONOTONIC, one clock for all processes) on every tick."""

    def __init__(self, config: uvicorn.Config, beat: Any) -> None:
        super().__init__(config)
        self._beat = beat

    async def on_tick(self, counter: int) -> bool:
        self._beat.value = time.monotonic()
        return await super().on_tick(counter)


def _worker_main(config: uvicorn.Config, listener: socket.socket, beat: Any) -> None:
    config.configure_logging()
    _BeatingServer(config, beat).run(sockets=[listener])


@dataclass
class _Worker:
    process: BaseProcess
    beat: Any  # a shared double: the worker's last tick, 0 until it serves


class WorkerGroup:
    """One worker process per socket; a worker that exits is started again on the same socket until stopped.

    Stops on SIGINT or SIGTERM (each worker finishes its requests first), or
    when a worker fails before it could serve (it would fail again the same
    way): then :meth:`run` raises.
    """

    def __init__(self, config: uvicorn.Config, sockets: Sequence[socket.socket], *, hang_s: float = HANG_S) -> None:
        self._config = config
        self._sockets = list(sockets)
        self._hang_s = hang_s
        self._context = mp.get_context("spawn")
        self._stop = threading.Event()
        self.restarts = 0

    def run(self) -> None:
        handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        workers = [self._start(s) for s in self._sockets]
        failed: str | None = None
        try:
            while not self._stop.wait(0.5):
                for slot, worker in enumerate(workers):
                    why = _why_replace(slot, worker, self._hang_s)
                    if why is None:
                        continue
                    if worker.process.exitcode == STARTUP_FAILURE:
                        failed = f"worker {slot + 1} (pid {worker.process.pid}) could not start serving"
                        self._stop.set()
                        break
                    _log.warning("%s; starting a new one on its socket", why)
                    workers[slot] = self._start(self._sockets[slot])
                    self.restarts += 1
        finally:
            _stop_all([w.process for w in workers])
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        if failed is not None:
            raise StorageError(
                failed,
                hint="its error is logged above (often the database, Redis or blob store); fix it and start again",
            )

    def stop(self) -> None:
        self._stop.set()

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self._stop.set()

    def _start(self, listener: socket.socket) -> _Worker:
        beat = self._context.RawValue("d", 0.0)
        process = self._context.Process(target=_worker_main, args=(self._config, listener, beat), daemon=False)
        process.start()
        return _Worker(process, beat)


def _why_replace(slot: int, worker: _Worker, hang_s: float) -> str | None:
    """Why the worker in ``slot`` must be replaced (a hung one is killed first), or None if it serves."""
    process = worker.process
    if process.is_alive():
        beat = worker.beat.value
        silent = time.monotonic() - beat
        if not beat or silent < hang_s:
            return None
        process.kill()
        process.join()
        return f"worker {slot + 1} (pid {process.pid}) has not run for {silent:.0f} s and was killed"
    process.join()
    return f"worker {slot + 1} (pid {process.pid}) exited with code {process.exitcode}"


def _stop_all(workers: Sequence[BaseProcess]) -> None:
    for worker in workers:
        if worker.is_alive():
            worker.terminate()  # SIGTERM: uvicorn finishes the requests in flight, then exits
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join()


__all__ = ["HANG_S", "STOP_GRACE_S", "WorkerGroup"]
