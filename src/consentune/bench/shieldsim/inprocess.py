"""The same API app the server runs, called in this process: no sockets, no HTTP parsing, no second process.

``consentune serve`` spends most of a simulated request on the HTTP round trip
(httpx on one side, uvicorn and h11 on the other, each in its own process on a
loaded machine).  :class:`InProcessServer` opens the service from the same
settings (environment) the subprocess gets and hands each request's ASGI scope
straight to :func:`consentune.api.create_app`'s app on an event loop of its
own thread, with the peer ``127.0.0.1`` as a local reverse proxy would be.
Everything the shield sees (headers, peer, simulated clock, cookies, byte
ranges) is what the subprocess sees; only the transport differs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx

_TRANSPORTS: dict[str, httpx.BaseTransport] = {}


def transport_for(base_url: str) -> httpx.BaseTransport | None:
    """The in-process transport serving ``base_url``, if one does (else the client uses the network)."""
    return _TRANSPORTS.get(base_url)


class _AsgiTransport(httpx.BaseTransport):
    """Sync httpx transport that runs each request through an ASGI app on a background event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.app: Any = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        future: Future[tuple[int, list[tuple[bytes, bytes]], bytes]] = asyncio.run_coroutine_threadsafe(
            self._call(request, body), self.loop
        )
        status, headers, content = future.result()
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _call(self, request: httpx.Request, body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": "http",
            "path": url.path,
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 80),
        }
        sent = False
        done = asyncio.Event()
        status, headers, chunks = 500, [], []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Mapping[str, Any]) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = int(message["status"]), list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    done.set()

        await self.app(scope, receive, send)
        done.set()
        return status, headers, b"".join(chunks)


class InProcessServer:
    """Serve ``home`` in this process with the settings :class:`~consentune.bench.shieldsim.server.Server`
    gives its subprocess; ``url`` is a name only this process's clients resolve.  :meth:`restart` closes the
    service (detector, caches, lifespan tasks) and opens a new one on the same database, as a deploy does."""

    def __init__(self, env: Mapping[str, str], *, home: Path, port: int) -> None:
        self.env, self.home = dict(env), home
        # a loopback name (cookies stay non-Secure on plain http to loopback, as for the subprocess); the port
        # only keys the transport: nothing listens on it, so a client without the transport fails loudly
        self.url = f"http://127.0.0.1:{port}"
        self.restarts = 0
        self.cpu_s = 0.0  # shares this process: see the harness's CPU time
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="consentune-sim", daemon=True)
        self._transport = _AsgiTransport(self._loop)
        self._service: Any = None
        self._lifespan: Any = None

    def start(self) -> None:
        from consentune.api import create_app
        from consentune.config import Settings
        from consentune.service import open_service

        if not self._thread.is_alive():
            self._thread.start()
        self._service = open_service(Settings.from_env(self.env))
        app = create_app(self._service)
        self._transport.app = app
        self._lifespan = _Lifespan(app, self._loop)
        self._lifespan.start()
        _TRANSPORTS[self.url] = self._transport

    def stop(self) -> None:
        _TRANSPORTS.pop(self.url, None)
        if self._lifespan is not None:
            self._lifespan.stop()
            self._lifespan = None
        if self._service is not None:
            self._service.close()
            self._service = None

    def restart(self) -> None:
        self.stop()
        self.restarts += 1
        self.start()

    def close(self) -> None:
        self.stop()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> InProcessServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class _Lifespan:
    """Runs the app's lifespan (ledger integrator, scheduler) on the loop between start and stop."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.app, self.loop = app, loop
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._events: dict[str, threading.Event] = {k: threading.Event() for k in ("startup", "shutdown")}
        self._failed: str = ""

    def start(self) -> None:
        asyncio.run_coroutine_threadsafe(self._begin(), self.loop).result(timeout=60)
        self._wait("startup")

    def stop(self) -> None:
        if self._inbox is not None:
            inbox = self._inbox
            self.loop.call_soon_threadsafe(inbox.put_nowait, {"type": "lifespan.shutdown"})
            self._wait("shutdown")

    async def _begin(self) -> None:
        self._inbox = asyncio.Queue()
        self._inbox.put_nowait({"type": "lifespan.startup"})
        inbox = self._inbox

        async def receive() -> dict[str, Any]:
            return await inbox.get()

        async def send(message: Mapping[str, Any]) -> None:
            kind = str(message["type"])
            if kind.endswith(".failed"):
                self._failed = str(message.get("message", kind))
            for name, event in self._events.items():
                if kind.startswith(f"lifespan.{name}."):
                    event.set()

        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.loop.create_task(self.app(scope, receive, send))

    def _wait(self, name: str) -> None:
        deadline = time.monotonic() + 60
        while not self._events[name].wait(0.05):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app's lifespan {name} did not complete within 60 s")
        if self._failed:
            raise RuntimeError(f"the app's lifespan {name} failed: {self._failed}")


__all__ = ["InProcessServer", "transport_for"]
