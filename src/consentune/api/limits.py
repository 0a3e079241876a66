"""Limits every request meets before a route sees it: a clean URL and a bounded body.

The path and query, once percent-decoded, must be UTF-8 without NUL: no
database stores NUL in text, and starlette would otherwise quietly replace
invalid bytes. A body whose ``Content-Length`` is over the limit is refused with 413 before
a byte of it is read; a chunked body is counted as it arrives and refused
once it passes the limit. Uploads (multipart) may be as large as the
configured upload limit plus room for the form's other fields; every other
body, JSON included, at most :data:`MAX_BODY_BYTES`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote_to_bytes

from consentune.api.errors import our_error
from consentune.errors import InvalidInput, PayloadTooLarge

MAX_BODY_BYTES = 16 * 2**20  # the largest JSON batch (10,000 play rows) is a few MB
FORM_OVERHEAD_BYTES = 2**20  # multipart boundaries, headers and small fields beside the file

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestLimits:
    """ASGI middleware: 400 for a URL that is not clean text, 413 for a body over its limit."""

    def __init__(self, app: ASGIApp, *, max_upload_bytes: int, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self._max_upload = max_upload_bytes + FORM_OVERHEAD_BYTES
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = _url_problem(scope)
        if problem is not None:
            await our_error(problem)(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/")
        limit = self._max_upload if multipart else self._max_body
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
            shown = declared.decode("latin-1")[:40]
            message = f"request body of {shown} bytes is over the {limit}-byte limit"
            await our_error(PayloadTooLarge(message, hint=_hint(limit)))(scope, receive, send)
            return
        await self.app(scope, _counting(receive, limit), send)


def _url_problem(scope: Scope) -> InvalidInput | None:
    raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    for part, raw in (("path", raw_path), ("query", scope.get("query_string", b""))):
        text = unquote_to_bytes(raw.replace(b"+", b" ") if part == "query" else raw)
        try:
            decoded = text.decode("utf-8")
        except UnicodeDecodeError:
            return InvalidInput(f"the URL {part} is not valid UTF-8", hint="percent-encode UTF-8 text")
        if "\x00" in decoded:
            return InvalidInput(f"the URL {part} contains a NUL character", hint="remove %00 from the URL")
    return None


def _hint(limit: int) -> str:
    return f"send at most {limit} bytes: split batches, or upload a shorter or more compressed file"


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(f"request body is over the {limit}-byte limit", hint=_hint(limit))
        return message

    return counted


__all__ = ["FORM_OVERHEAD_BYTES", "MAX_BODY_BYTES", "RequestLimits"]
