"""A throwaway multi-node Ray cluster on this machine, for tests and ``consentune bench jobs``.

Each node is a ``ray start --block`` process in its own session and
temporary folder, so stopping the cluster ends exactly the processes it
started (never ``ray stop``, which ends every Ray process on the machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from consentune.errors import InvalidInput, StorageError

_STOP_GRACE_S = 10.0
# a throwaway cluster on one machine, reachable from it only: Ray's token auth would need a shared token file
_THROWAWAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ray_cli() -> str:
    found = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if found is None:
        raise InvalidInput("the `ray` command is not installed", hint="pip install 'consentune[ray]'")
    return found


class LocalRayCluster:
    """``nodes`` Ray nodes (one head) with ``cpus_per_node`` CPUs each; use as a context manager."""

    def __init__(self, *, nodes: int = 2, cpus_per_node: int = 1, start_timeout_s: float = 120.0) -> None:
        self._nodes = nodes
        self._cpus = cpus_per_node
        self._timeout = start_timeout_s
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dir = Path(tempfile.mkdtemp(prefix="consentune-ray-"))
        self.address = ""
        self.env = {**os.environ, **_THROWAWAY_ENV}

    def __enter__(self) -> LocalRayCluster:
        self.start()
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def start(self) -> str:
        """Start the head and the other nodes; returns the cluster address once every node is up."""
        os.environ.update(_THROWAWAY_ENV)  # this driver joins without a token too
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        try:
            self._spawn(["--head", "--port", str(port), "--include-dashboard", "false"], "head")
            for i in range(1, self._nodes):
                self._spawn(["--address", self.address], f"node{i}")
        except BaseException:
            self.stop()
            raise
        return self.address

    def _spawn(self, role: list[str], name: str) -> None:
        args = [
            _ray_cli(), "start", *role, "--block", "--num-cpus", str(self._cpus), "--disable-usage-stats",
            "--temp-dir", str(self._dir), "--node-ip-address", "127.0.0.1",
            "--dashboard-agent-listen-port", str(_free_port()), "--dashboard-agent-grpc-port", str(_free_port()),
            "--metrics-export-port", str(_free_port()), "--runtime-env-agent-port", str(_free_port()),
        ]  # fmt: skip
        log = (self._dir / f"{name}.log").open("wb")
        self._procs.append(
            subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
        if name == "head":
            self._wait_for_port()

    def _wait_for_port(self) -> None:
        host, port = self.address.rsplit(":", 1)
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._procs[0].poll() is not None:
                raise StorageError(
                    f"the Ray head exited with code {self._procs[0].returncode}",
                    hint=f"see {self._dir / 'head.log'}",
                )
            for address in (host, socket.gethostbyname(socket.gethostname())):
                with socket.socket() as sock:
                    if sock.connect_ex((address, int(port))) == 0:
                        return
            time.sleep(0.5)
        raise StorageError(f"the Ray head did not listen within {self._timeout:.0f} s", hint="see its log")

    def stop(self) -> None:
        """End every process this cluster started: SIGTERM, then SIGKILL after a short grace period."""
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self._procs.clear()
        shutil.rmtree(self._dir, ignore_errors=True)


__all__ = ["LocalRayCluster"]
