"""RayEngine: run job tasks as Ray tasks on a cluster (``pip install 'consentune[ray]'``).

With an address (``CONSENTUNE_RAY_ADDRESS``, ``--ray-address``, e.g.
``ray://head:10001`` or ``auto``) the driver joins that cluster; without one
it starts a local cluster over this machine's cores.  Tasks are pure
functions of their payload (a signed grant and where blobs live); Ray may
retry a task whose worker died, which is safe because writing results back
is idempotent per task.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import consentune
from consentune.errors import InvalidInput, StorageError
from consentune.jobs.work import warm_up

P = TypeVar("P")
R = TypeVar("R")


def _ray() -> Any:
    try:
        import ray
    except ModuleNotFoundError:
        raise InvalidInput("the ray engine needs Ray installed", hint="pip install 'consentune[ray]'") from None
    return ray


def _call(fn: Callable[[P], R], payload: P) -> R:
    return fn(payload)


class RayEngine:
    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None) -> None:
        ray = self._ray = _ray()
        self._owns = not ray.is_initialized()
        if self._owns:
            # workers import this very consentune (the cluster may also have it installed)
            code = str(Path(consentune.__file__).resolve().parents[1])
            path = os.pathsep.join(p for p in (code, os.environ.get("PYTHONPATH", "")) if p)
            ray.init(
                address=address,
                num_cpus=workers if address is None else None,
                runtime_env={"env_vars": {"PYTHONPATH": path}},
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        self._requested = workers
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self._workers = min(workers, cpus) if workers else cpus
        self._remote = ray.remote(num_cpus=1, max_retries=2)(_call)

    @property
    def workers(self) -> int:
        return self._workers

    def nodes(self) -> int:
        """Alive nodes in the cluster."""
        return sum(1 for n in self._ray.nodes() if n.get("Alive"))

    def wait_for_nodes(self, count: int, *, timeout_s: float = 120.0) -> None:
        """Block until ``count`` nodes are alive (a joining node takes seconds); then use every CPU."""
        deadline = time.monotonic() + timeout_s
        while self.nodes() < count:
            if time.monotonic() > deadline:
                raise StorageError(
                    f"only {self.nodes()} of {count} Ray nodes came up in {timeout_s:.0f} s",
                    hint="check the nodes' logs and that they can reach the head",
                )
            time.sleep(0.5)
        cpus = int(self._ray.cluster_resources().get("CPU", 1))
        self._workers = min(self._requested, cpus) if self._requested else cpus

    def warm(self) -> list[str]:
        refs = [self._remote.remote(warm_up, i) for i in range(self._workers)]
        return [str(x) for x in self._ray.get(refs)]

    def run(self, fn: Callable[[P], R], payloads: Iterable[P], *, window: int) -> Iterator[R]:
        ray = self._ray
        pending = iter(payloads)
        inflight: list[Any] = []

        def top_up() -> None:
            while len(inflight) < window:
                payload = next(pending, _END)
                if payload is _END:
                    return
                inflight.append(self._remote.remote(fn, payload))

        try:
            top_up()
            while inflight:
                finished, rest = ray.wait(inflight, num_returns=1)
                inflight[:] = rest
                top_up()
                for ref in finished:
                    yield ray.get(ref)
        finally:
            for ref in inflight:
                ray.cancel(ref)

    def close(self) -> None:
        if self._owns:
            self._ray.shutdown()


_END = object()

__all__ = ["RayEngine"]
