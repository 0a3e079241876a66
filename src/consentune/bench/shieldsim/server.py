"""Run the real ``consentune serve`` on 127.0.0.1 in a subprocess, always stopped afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(home: Path, *, anonymous_audio: str, newcomer_budget: str | None, watermark: bool) -> dict[str, str]:
    """The environment the benchmark's server runs with (subprocess or in-process alike)."""
    env = {
        **os.environ,
        "CONSENTUNE_HOME": str(home),
        "CONSENTUNE_DATABASE_URL": f"sqlite:///{home / 'consentune.db'}",
        "CONSENTUNE_SHIELD_SIM_CLOCK": "1",
        "CONSENTUNE_BENCH_MODE": "1",
        "CONSENTUNE_TRUSTED_PROXIES": "127.0.0.1",
        "CONSENTUNE_ANONYMOUS_AUDIO": anonymous_audio,
        "CONSENTUNE_SIGNUP_VERIFY": "none",
        "CONSENTUNE_STREAM_WATERMARK": "1" if watermark else "0",
        **({"CONSENTUNE_NEWCOMER_BUDGET": newcomer_budget} if newcomer_budget else {}),
    }
    env.pop("CONSENTUNE_REDIS_URL", None)
    return env


class Server:
    """The real ``consentune serve`` on one loopback port; :meth:`restart` stops it and starts it again on the
    same port and database (what a deploy does), so clients reconnect and listeners come back to it."""

    def __init__(
        self,
        home: Path,
        *,
        startup_s: float = 240.0,
        anonymous_audio: str = "none",
        newcomer_budget: str | None = None,
        watermark: bool = True,
    ) -> None:
        self.home, self.startup_s = home, startup_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.restarts = 0
        self.cpu_s = 0.0  # CPU seconds the server processes used (Linux /proc), summed over restarts
        self.env = server_env(home, anonymous_audio=anonymous_audio, newcomer_budget=newcomer_budget,
                              watermark=watermark)  # fmt: skip
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = (self.home / "server.log").open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "consentune", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        _wait_ready(self.url, self._process, self.home, self.startup_s)

    def stop(self) -> None:
        if self._process is not None:
            self.cpu_s += _cpu_seconds(self._process.pid)
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=15)
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def __enter__(self) -> Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_server(
    home: Path, *, startup_s: float = 240.0, anonymous_audio: str = "none", newcomer_budget: str | None = None
) -> Iterator[str]:
    """Serve ``home`` with the simulated clock on and 127.0.0.1 trusted as the proxy; yield the base URL.

    Accounts count as verified at sign-up (``CONSENTUNE_SIGNUP_VERIFY=none``): the simulated farms pay no
    identity cost (that cost is modelled in docs/shield-detection.md), so the budgets are measured alone."""
    with Server(home, startup_s=startup_s, anonymous_audio=anonymous_audio, newcomer_budget=newcomer_budget) as s:
        yield s.url


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], home: Path, startup_s: float) -> None:
    deadline = time.monotonic() + startup_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (home / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"consentune serve exited with {process.returncode}: {tail}")
        try:
            if httpx.get(f"{base_url}/robots.txt", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"consentune serve did not answer on {base_url} within {startup_s:.0f} s")


def established_at(home: Path) -> dict[str, float]:
    """Account id -> when the account became established (its stored listening history), epoch seconds."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{home / 'consentune.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, established_us FROM listener_accounts "
                                        "WHERE established_us IS NOT NULL")).all()  # fmt: skip
    finally:
        engine.dispose()
    return {str(account): int(us) / 1e6 for account, us in rows}


def decision_names(home: Path) -> dict[str, str]:
    """``#<record id>`` -> the signals behind that shield decision (clients are told the reference only)."""
    from consentune.config import Settings
    from consentune.service import open_service

    service = open_service(Settings(home=home, database_url=f"sqlite:///{home / 'consentune.db'}"))
    try:
        records = service.store.shield_decisions(limit=10**7)
    finally:
        service.close()
    return {f"#{r.id}": "+".join(str(s.get("name", "?")) for s in r.signals) or r.action for r in records}


__all__ = ["Server", "decision_names", "established_at", "free_port", "running_server", "server_env"]
