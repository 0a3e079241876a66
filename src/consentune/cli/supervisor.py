"""Worker processes for ``serve --workers N``, each accepting on its own socket.

With one listening socket shared by every worker, each worker's event loop
accepts all the connections pending when it wakes up, so the first worker
to wake can take most of a burst of new connections and keep them for as
long as the clients keep them alive: two workers served little more than
one.  Here every worker listens on its own ``SO_REUSEPORT`` socket bound to
the same port, and the kernel spreads new connections over them by address
hash.  A worker that dies is replaced on *its* socket, so connections
waiting in that socket's queue are served by the replacement, not reset.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import socket
import threading
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from consentune.errors import StorageError

_log = logging.getLogger("uvicorn.error")
STOP_GRACE_S = 15.0  # how long stopping workers get to finish their requests before they are killed


def _worker_main(config: uvicorn.Config, listener: socket.socket) -> None:
    config.configure_logging()
    uvicorn.Server(config).run(sockets=[listener])


class WorkerGroup:
    """One worker process per socket; a worker that exits is started again on the same socket until stopped.

    Stops on SIGINT or SIGTERM (each worker finishes its requests first), or
    when a worker fails before it could serve (it would fail again the same
    way): then :meth:`run` raises.
    """

    def __init__(self, config: uvicorn.Config, sockets: Sequence[socket.socket]) -> None:
        self._config = config
        self._sockets = list(sockets)
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
                    if worker.is_alive():
                        continue
                    worker.join()
                    if worker.exitcode == STARTUP_FAILURE:
                        failed = f"worker {slot + 1} (pid {worker.pid}) could not start serving"
                        self._stop.set()
                        break
                    _log.warning(
                        "worker %d (pid %s) exited with code %s; starting a new one on its socket",
                        slot + 1, worker.pid, worker.exitcode,
                    )  # fmt: skip
                    workers[slot] = self._start(self._sockets[slot])
                    self.restarts += 1
        finally:
            _stop_all(workers)
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

    def _start(self, listener: socket.socket) -> BaseProcess:
        worker = self._context.Process(target=_worker_main, args=(self._config, listener), daemon=False)
        worker.start()
        return worker


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


__all__ = ["STOP_GRACE_S", "WorkerGroup"]
