"""``consentune bench workers``: API throughput and latency with 1, 2, ... worker processes, peers in one run.

Each round starts ``consentune serve --workers W`` on a fresh port over one
temporary SQLite database (worker counts alternating, several rounds, the
median reported), warms it up, then drives it with ``wrk`` (when on PATH; else a
threaded keep-alive client, which competes with the server for the same
cores and so understates scaling).  Routes: ``/v1/health`` (framework,
middleware and metrics only) and ``/v1/tracks/{id}`` (an authenticated
database read).
"""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from consentune.config import Settings
from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.service import open_service
from consentune.types import Role

Progress = Callable[[str], None]
STARTUP_S = 180.0  # generous: on a loaded machine N workers importing everything at once take a while


def run_workers(
    *,
    workers: list[int],
    seconds: float,
    connections: int,
    progress: Progress = lambda _m: None,
    shield_states: tuple[str, ...] = (),
    redis_url: str | None = None,
    repeats: int = 3,
) -> dict[str, Any]:
    """Requests/s and latency percentiles (ms) per (route, worker count); ``scaling`` is each count over 1 worker.

    Each worker count is served ``repeats`` times, counts alternating, each server warmed up before it is
    measured; the run with the median requests/s is reported, all of them under ``samples``.

    ``shield_states`` adds a ``listen:<state>`` route per state (memory, file, redis): the public catalogue
    as listeners get it, every request through the shield's guard from one of 60,000 client addresses
    (``X-Forwarded-For`` from the trusted loopback proxy), so the detector and rate limits do real work.
    """
    root = Path(tempfile.mkdtemp(prefix="consentune-bench-workers-"))
    try:
        settings = Settings(home=root / "home", database_url=f"sqlite:///{root / 'c.db'}", identify_at_ingest=False)
        svc = open_service(settings)
        artist = svc.catalog.add_artist("Bench", actor="admin:bench")
        clip = encode(synthesize(SongSpec(seed=1, duration_s=1.0, sample_rate=8_000)), 8_000, format="wav")
        track = svc.catalog.ingest(clip, filename="b.wav", artist=artist, title="B", actor="bench").track
        key = svc.keys.create(role=Role.ADMIN)[1]
        svc.close()
        routes = {"health": ("/v1/health", {}), "track": (f"/v1/tracks/{track.id}", {"Authorization": f"Bearer {key}"})}
        tool = "wrk" if shutil.which("wrk") else "python-threads"
        drive = _wrk if tool == "wrk" else _threads
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for repeat in range(repeats):  # worker counts alternate, so a slow spell of the machine hits each alike
            for count in workers:
                progress(f"{count} worker(s): starting ({repeat + 1}/{repeats})")
                with _Server(settings, count, root / f"server-{count}.log") as url:
                    drive(url + "/v1/health", {}, min(1.0, seconds), connections)  # warm every worker up first
                    for name, (path, headers) in routes.items():
                        got = drive(url + path, headers, seconds, connections)
                        samples.setdefault(name, {}).setdefault(str(count), []).append(got)
                        progress(f"{count} worker(s) {name}: {got['requests_per_s']:,.0f} req/s")
        rounds: dict[str, dict[str, Any]] = {
            name: {count: _median_run(runs) for count, runs in per.items()} for name, per in samples.items()
        }
        for state in shield_states:
            for count in workers:
                name = f"listen:{state}"
                env = _shield_env(state, redis_url, prefix=f"consentune-bench-workers:{time.time_ns()}:")
                server = _Server(settings, count, root / f"server-{state}-{count}.log", env=env)
                with server as url:
                    cpu_before = server.cpu_s()
                    got = drive(url + "/v1/listen/catalog?limit=5", {}, seconds, connections, vary_address=True)
                    served = got["requests_per_s"] * seconds
                    got["server_cpu_ms_per_request"] = round((server.cpu_s() - cpu_before) * 1000 / max(served, 1), 3)
                    rounds.setdefault(name, {})[str(count)] = got
                    progress(f"{count} worker(s) {name}: {got['requests_per_s']:,.0f} req/s, {got['non_2xx']} non-2xx")
        base = str(workers[0])
        scaling = {
            name: {n: round(r["requests_per_s"] / max(per[base]["requests_per_s"], 1e-9), 2) for n, r in per.items()}
            for name, per in rounds.items()
        }
        return {
            "tool": tool,
            "seconds": seconds,
            "connections": connections,
            "cpus": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "repeats": repeats,
            "rounds": rounds,
            "samples": {name: _rates(per) for name, per in samples.items()},
            "scaling": scaling,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _rates(per_count: dict[str, list[dict[str, Any]]]) -> dict[str, list[float]]:
    return {count: [float(r["requests_per_s"]) for r in runs] for count, runs in per_count.items()}


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: float(r["requests_per_s"]))[len(runs) // 2]


def _shield_env(state: str, redis_url: str | None, *, prefix: str) -> dict[str, str]:
    env = {"CONSENTUNE_SHIELD_STATE": state, "CONSENTUNE_TRUSTED_PROXIES": "127.0.0.1"}
    if state == "redis":
        if not redis_url:
            raise ValueError("the redis shield state needs --redis-url")
        env |= {"CONSENTUNE_REDIS_URL": redis_url, "CONSENTUNE_REDIS_PREFIX": prefix}
    return env


class _Server:
    def __init__(self, settings: Settings, workers: int, log: Path, *, env: dict[str, str] | None = None) -> None:
        self._settings, self._workers, self._log = settings, workers, log
        self._extra_env = env or {}
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        port = _free_port()
        env = {
            **os.environ,
            "CONSENTUNE_HOME": str(self._settings.home),
            "CONSENTUNE_DATABASE_URL": self._settings.database_url,
            "CONSENTUNE_IDENTIFY_AT_INGEST": "0",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.pop("CONSENTUNE_REDIS_URL", None)
        env.pop("CONSENTUNE_SHIELD_STATE", None)
        env |= self._extra_env
        cmd = [sys.executable, "-m", "consentune", "serve", "--port", str(port), "--workers", str(self._workers),
               "--log-level", "warning"]  # fmt: skip
        with self._log.open("wb") as out:
            self._process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"server exited: {self._log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/v1/ready", timeout=2).close()
                time.sleep(1.0 * self._workers)  # let every worker finish starting
                return url
            except OSError:
                time.sleep(0.2)
        tail = self._log.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"server did not start within {STARTUP_S:.0f} s: {tail}")

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server and its worker processes have used so far (Linux /proc)."""
        if self._process is None:
            return 0.0
        return sum(_cpu_s(pid) for pid in _tree(self._process.pid))

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()


def _tree(pid: int) -> list[int]:
    pids, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                children = [int(c) for c in task.read_text().split()]
            except OSError:
                continue
            pids += children
            frontier += children
    return pids


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


# wrk: a client address per request from 60,000 (198.18.0.0/15, the benchmarking range)
_WRK_ADDRESSES = """
request = function()
  local n = math.random(0, 59999)
  local address = string.format("198.18.%d.%d", math.floor(n / 250), n % 250 + 1)
  return wrk.format(nil, nil, {["X-Forwarded-For"] = address})
end
"""


def _wrk(
    url: str, headers: dict[str, str], seconds: float, connections: int, *, vary_address: bool = False
) -> dict[str, Any]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", url]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if vary_address:
            script.write(_WRK_ADDRESSES)
            script.flush()
            cmd += ["-s", script.name]
        return parse_wrk(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


def parse_wrk(text: str) -> dict[str, Any]:
    """Requests/s, p50/p90/p99 latency (ms) and non-2xx count from ``wrk --latency`` output."""
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    out: dict[str, Any] = {"requests_per_s": rate}
    for pct in ("50", "90", "99"):
        found = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\b", text)
        if found:
            out[f"p{pct}_ms"] = round(float(found.group(1)) * _UNIT_MS[found.group(2)], 3)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx"] = int(errors.group(1)) if errors else 0
    return out


def _threads(
    url: str, headers: dict[str, str], seconds: float, connections: int, *, vary_address: bool = False
) -> dict[str, Any]:
    parts = urlsplit(url)
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        mine = []
        while time.monotonic() < stop:
            started = time.perf_counter()
            sent = headers
            if vary_address:
                n = random.randrange(60_000)
                sent = {**headers, "X-Forwarded-For": f"198.18.{n // 250}.{n % 250 + 1}"}
            target = f"{parts.path}?{parts.query}" if parts.query else parts.path
            conn.request("GET", target, headers=sent)
            reply = conn.getresponse()
            reply.read()
            mine.append(time.perf_counter() - started)
            if reply.status >= 300:
                failures[0] += 1
        with lock:
            latencies.extend(mine)

    pool = [threading.Thread(target=client) for _ in range(connections)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3) if latencies else 0.0

    return {"requests_per_s": len(latencies) / seconds, "p50_ms": pct(0.5), "p90_ms": pct(0.9), "p99_ms": pct(0.99),
            "non_2xx": failures[0]}  # fmt: skip


__all__ = ["parse_wrk", "run_workers"]
