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

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(
    home: Path, *, startup_s: float = 60.0, anonymous_audio: str = "none", newcomer_budget: str | None = None
) -> Iterator[str]:
    """Serve ``home`` with the simulated clock on and 127.0.0.1 trusted as the proxy; yield the base URL.

    Accounts count as verified at sign-up (``CONSENTUNE_SIGNUP_VERIFY=none``): the simulated farms pay no
    identity cost (that cost is modelled in docs/shield-detection.md), so the budgets are measured alone."""
    port = _free_port()
    env = {
        **os.environ,
        "CONSENTUNE_HOME": str(home),
        "CONSENTUNE_DATABASE_URL": f"sqlite:///{home / 'consentune.db'}",
        "CONSENTUNE_SHIELD_SIM_CLOCK": "1",
        "CONSENTUNE_BENCH_MODE": "1",
        "CONSENTUNE_TRUSTED_PROXIES": "127.0.0.1",
        "CONSENTUNE_ANONYMOUS_AUDIO": anonymous_audio,
        "CONSENTUNE_SIGNUP_VERIFY": "none",
        **({"CONSENTUNE_NEWCOMER_BUDGET": newcomer_budget} if newcomer_budget else {}),
    }
    env.pop("CONSENTUNE_REDIS_URL", None)
    log = (home / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "consentune", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process, home, startup_s)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


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


__all__ = ["decision_names", "running_server"]
