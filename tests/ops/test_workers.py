"""``consentune serve --workers 2`` as real processes: one metrics picture, one scheduler leader, JSON logs."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, *, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Connection": "close", "X-Request-Id": "probe-1"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, dict(response.headers), response.read()


def _sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def _until(check: object, *, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if callable(check) and check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("the servers did not get there in time")


@contextlib.contextmanager
def _worker_group(tmp_path: Path, *options: str) -> Iterator[tuple[str, Path, Path, int]]:
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    env = {
        **os.environ,
        "CONSENTUNE_HOME": str(tmp_path / "home"),
        "CONSENTUNE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    env.pop("CONSENTUNE_REDIS_URL", None)
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "consentune", "serve", "--workers", "2", "--log-format", "json", *options]
    with log.open("wb") as out:
        process = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _until(lambda: process.poll() is None and _get(f"{url}/v1/health")[0] == 200)
        yield url, metrics_dir, log, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path, Path, int]]:
    with _worker_group(tmp_path) as group:
        yield group


def test_two_workers_report_one_picture(two_workers: tuple[str, Path, Path, int]) -> None:
    url, metrics_dir, log, parent = two_workers
    # both workers are up once each has written its own sample files (the parent only migrates)
    _until(lambda: len({re.sub(r"\D", "", p.stem) for p in metrics_dir.glob("*.db")} - {str(parent)}) == 2)
    for _ in range(40):
        status, headers, _body = _get(f"{url}/v1/capabilities")
        assert status == 200 and headers["x-request-id"] == "probe-1"
    scrapes = [_get(f"{url}/metrics")[2].decode() for _ in range(6)]
    counts = {
        _sample(text, "consentune_http_request_duration_seconds_count", route="/v1/capabilities", status="2xx")
        for text in scrapes
    }
    assert counts == {40.0}  # whichever worker answers, it reports both workers' requests
    _until(lambda: _sample(_get(f"{url}/metrics")[2].decode(), "consentune_scheduler_leader_workers") == 1.0)
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [r for r in logged if r.get("logger") == "consentune.access" and r.get("route") == "/v1/capabilities"]
    assert len(access) == 40 and all(r["request_id"] == "probe-1" for r in access)


def _pids_serving(log: Path, route: str) -> list[int]:
    logged = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return [r["pid"] for r in logged if r.get("logger") == "consentune.access" and r.get("route") == route]


def test_each_worker_accepts_on_its_own_socket_and_a_killed_one_is_replaced_on_it(
    two_workers: tuple[str, Path, Path, int],
) -> None:
    url, _metrics_dir, log, parent = two_workers
    for _ in range(60):  # a new connection each time: the kernel spreads them over the workers' sockets
        assert _get(f"{url}/v1/capabilities")[0] == 200
    _until(lambda: len(_pids_serving(log, "/v1/capabilities")) == 60)
    served = set(_pids_serving(log, "/v1/capabilities"))
    assert len(served) == 2 and parent not in served
    victim = min(served)
    os.kill(victim, 9)
    # connections the kernel hashes to the dead worker's socket wait in its queue for the replacement;
    # none is refused or reset, and the replacement serves from that same socket
    for _ in range(30):
        assert _get(f"{url}/v1/health")[0] == 200
    for _ in range(60):
        assert _get(f"{url}/v1/capabilities")[0] == 200
    _until(lambda: len(_pids_serving(log, "/v1/capabilities")) == 120)
    now = set(_pids_serving(log, "/v1/capabilities")[60:])
    assert victim not in now and len(now) == 2
    assert "starting a new one on its socket" in log.read_text()


def test_a_hung_worker_is_killed_and_replaced_on_its_socket(tmp_path: Path) -> None:
    with _worker_group(tmp_path, "--worker-timeout", "3") as (url, _metrics_dir, log, _parent):
        for _ in range(40):
            assert _get(f"{url}/v1/capabilities")[0] == 200
        _until(lambda: len(_pids_serving(log, "/v1/capabilities")) == 40)
        victim = min(set(_pids_serving(log, "/v1/capabilities")))
        os.kill(victim, signal.SIGSTOP)  # alive, but its event loop never runs again: hung
        try:
            # connections hashed to the frozen worker's socket wait there until its replacement takes them
            for _ in range(40):
                assert _get(f"{url}/v1/capabilities", timeout=90)[0] == 200
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGCONT)
        _until(lambda: len(_pids_serving(log, "/v1/capabilities")) == 80)
        now = set(_pids_serving(log, "/v1/capabilities")[40:])
        assert victim not in now and len(now) == 2
        assert f"(pid {victim}) has not run for" in log.read_text()
