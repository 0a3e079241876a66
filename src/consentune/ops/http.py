"""ASGI middleware: request id in and out, one access log line and one latency sample per request."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentune.ops.logs import REQUEST_ID, accept_request_id
from consentune.ops.metrics import Metrics

REQUEST_ID_HEADER = "x-request-id"
UNMATCHED = "<unmatched>"
access_log = logging.getLogger("consentune.access")


class RequestContext:
    """Wraps the app: sets :data:`~consentune.ops.logs.REQUEST_ID`, echoes it, times the request.

    Latency is labelled by the route *template* (``/v1/tracks/{track_id}``),
    never the raw path, so the label set stays small.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v.decode("latin-1") for k, v in scope["headers"] if k == REQUEST_ID_HEADER.encode()), None)
        request_id = accept_request_id(offered)
        token = REQUEST_ID.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe_request(route=route, method=scope["method"], status=status, seconds=seconds)
            access_log.info(
                "%s %s %d",
                scope["method"],
                route,
                status,
                extra={"route": route, "method": scope["method"], "status": status, "ms": round(seconds * 1000, 2)},
            )
            REQUEST_ID.reset(token)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


__all__ = ["REQUEST_ID_HEADER", "RequestContext"]
