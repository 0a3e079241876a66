"""`serve` and `demo`: a busy port is one line and nothing built; the server says where it listens; access log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import run

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        yield holder.getsockname()[1]


@pytest.mark.parametrize("verb", ["demo", "serve"])
def test_a_busy_port_is_one_line_and_nothing_is_built(home: Path, capsys: Capture, busy_port: int, verb: str) -> None:
    code, out, err = run(capsys, verb, "--port", str(busy_port))
    assert code == 4 and out == ""  # no fresh demo keys printed before the failure
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"port {busy_port}" in lines[0]
    assert f"--port {busy_port + 1}" in lines[0]
    assert not (home / "home").exists()  # no data folder created either


def test_an_address_not_on_this_machine(home: Path, capsys: Capture) -> None:
    code, _out, err = run(capsys, "serve", "--host", "192.0.2.1", "--port", "0")
    assert code == 2 and "cannot listen on 192.0.2.1" in err and len(err.strip().splitlines()) == 1


def _read_until(stream: object, marker: str, deadline: float) -> list[str]:
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} in server output: {lines}")


def test_the_server_says_where_it_listens_logs_each_request_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTUNE_")}
    env |= {"CONSENTUNE_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "consentune", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        banner = "".join(_read_until(server.stdout, "press Ctrl+C to stop", deadline))
        port = int(banner.split("listening on 127.0.0.1 port ")[1].split(";")[0])
        assert f"http://127.0.0.1:{port}/v1" in banner and "/dashboard/sign-in" in banner
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/tracks", timeout=30)
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stream/a-secret-stream-token", timeout=30)
        first = _read_until(server.stdout, "/v1/tracks", deadline)[-1]
        assert '"GET /v1/tracks HTTP/1.1" 401' in first
        second = _read_until(server.stdout, "/stream/", deadline)[-1]
        assert "/stream/<token>" in second and "a-secret-stream-token" not in second
        server.send_signal(signal.SIGINT)
        rest, errors = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert "server stopped" in rest
    assert server.returncode == 130
    assert "Traceback" not in errors


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_served_connections_send_small_writes_at_once(host: str) -> None:
    """Nagle off on every connection: with it on, a keep-alive response written in two parts waited for the
    client's delayed ACK (~40 ms a request; measured 43 ms per request on one connection, 1.1 ms after)."""
    import asyncio

    from consentune.cli.serve import bind

    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    listener = bind(host, 0)
    seen: list[int] = []

    async def serve_once() -> None:
        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            seen.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)  # as uvicorn serves a bound socket
        async with server:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as client:
                client.setblocking(False)
                await asyncio.get_running_loop().sock_connect(client, listener.getsockname()[:2])
                for _ in range(100):
                    if seen:
                        break
                    await asyncio.sleep(0.01)

    try:
        asyncio.run(serve_once())
    finally:
        listener.close()
    assert seen and seen[0] != 0


def test_a_worker_group_listens_on_one_port_and_the_port_is_still_refused_to_others() -> None:
    from consentune.cli.serve import bind, bind_group
    from consentune.errors import Conflict

    if not hasattr(socket, "SO_REUSEPORT"):
        pytest.skip("no SO_REUSEPORT here: workers share one socket")
    group = bind_group("127.0.0.1", 0, 3)
    try:
        ports = {s.getsockname()[1] for s in group}
        assert len(group) == 3 and len(ports) == 1
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in group)
        assert all(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in group)
        (port,) = ports
        with pytest.raises(Conflict, match=f"port {port} .* in use"):
            bind("127.0.0.1", port)
        with pytest.raises(Conflict, match=f"port {port} .* in use"):
            bind_group("127.0.0.1", port, 2)  # another deployment's group may not join this one
    finally:
        for s in group:
            s.close()
