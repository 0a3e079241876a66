"""One JSON error shape for every failure: ``{"error": {"code", "message", "hint"}}``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from consentune.errors import (
    AccessDenied,
    AudioRejected,
    AuthenticationFailed,
    ChallengeRequired,
    Conflict,
    ConsentError,
    ConsentuneError,
    InvalidInput,
    LedgerError,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    StorageError,
    Throttled,
    VerificationFailed,
)

_STATUS: list[tuple[type[ConsentuneError], int]] = [
    (AudioRejected, 422),
    (PayloadTooLarge, 413),
    (RangeNotSatisfiable, 416),
    (InvalidInput, 400),
    (NotFound, 404),
    (Conflict, 409),
    (ConsentError, 409),
    (AccessDenied, 403),
    (AuthenticationFailed, 401),
    (Throttled, 429),
    (VerificationFailed, 422),
    (LedgerError, 500),
    (StorageError, 503),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def status_for(exc: ConsentuneError) -> int:
    return next((status for cls, status in _STATUS if isinstance(exc, cls)), 500)


def error_body(code: str, message: str, hint: str = "", **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": _printable(message), "hint": _printable(hint), **extra}}


def our_error(exc: ConsentuneError) -> JSONResponse:
    """The response for one of our errors: its status, the one shape, and the headers it needs."""
    extra: dict[str, Any] = {}
    headers: dict[str, str] | None = None
    if isinstance(exc, AudioRejected):
        extra["reason"] = exc.reason
    if isinstance(exc, ChallengeRequired):
        extra["challenge"] = exc.challenge
    if isinstance(exc, AuthenticationFailed):
        headers = {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, Throttled):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
        extra["retry_after_s"] = round(exc.retry_after_s, 3)
    return JSONResponse(error_body(exc.code, exc.message, exc.hint, **extra), status_for(exc), headers=headers)


def install_error_handlers(app: FastAPI, *, on_error: Callable[[ConsentuneError], None] | None = None) -> None:
    """``on_error`` sees each of our errors before it is answered (metrics count the shield's refusals)."""

    @app.exception_handler(ConsentuneError)
    async def _ours(_request: Request, exc: ConsentuneError) -> JSONResponse:
        if on_error is not None:
            on_error(exc)
        return our_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}" for err in exc.errors()
        )
        return JSONResponse(
            error_body(
                "invalid_request",
                f"request is not valid: {problems[:2000]}",
                "see /openapi.json for the request schema",
            ),
            422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, ConsentuneError):  # e.g. the body limit, hit while FastAPI read the body
            return our_error(exc.__cause__)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message, hint = str(exc.detail), "see /docs for the API"
        if exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"{request.method} is not allowed on {request.url.path[:200]}"
            hint = f"use {allowed}" if allowed else hint
        return JSONResponse(error_body(code, message, hint), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body(
                "internal_error",
                f"unexpected {type(exc).__name__}",
                "report this with the server log",
            ),
            500,
        )


def _printable(text: str) -> str:
    """Text safe to echo in a JSON error: lone surrogates (not encodable as UTF-8) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
