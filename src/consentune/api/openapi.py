"""The error half of the published contract: every operation lists each 4xx/5xx it can answer.

All errors share one schema, :class:`ErrorOut`. Which statuses an operation
can return follows from what it takes and who may call it, so the list is
derived here from each generated operation, in one place, instead of being
repeated (and forgotten) on every decorator:

- any parameter or body: 400 (bad input), 422 (fails the schema)
- a request body: 413 (over the size limit), 415 (not a media type it reads)
- a path parameter: 404
- a caller key: 401 (no or unknown key), 403 (role not allowed), 404
  (an artist named in the request does not exist); changes also 409
- listener routes behind the shield: 403 (challenge, block), 429 (throttle);
  streams also 416 (byte range outside the file)
- everything: 503 (the database is unavailable)
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

_SHIELDED = ("/v1/listen/", "/stream/")
_CALLER_HEADER = "x-api-key"  # every route that takes a caller key declares it (see api.deps)


class ErrorDetail(BaseModel):
    """What went wrong (``code`` is stable), and what to do about it; some errors add fields."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(examples=["not_found"])
    message: str
    hint: str


class ErrorOut(BaseModel):
    """The one JSON shape of every error response."""

    error: ErrorDetail


def error_statuses(path: str, method: str, operation: Mapping[str, Any]) -> set[int]:
    """The 4xx/5xx statuses an operation can answer, from what it takes (see the module docstring)."""
    parameters = operation.get("parameters", [])
    places = {p.get("in") for p in parameters}
    names = {str(p.get("name", "")).lower() for p in parameters if p.get("in") == "header"}
    body = "requestBody" in operation
    statuses = {503}
    if parameters or body:
        statuses |= {400, 422}
    if body:
        statuses |= {413, 415}
    if "path" in places:
        statuses.add(404)
    if _CALLER_HEADER in names:
        statuses |= {401, 403, 404}
        if method.upper() not in ("GET", "HEAD"):
            statuses.add(409)
    if path.startswith(_SHIELDED):
        statuses |= {400, 403, 404, 429}
        if path.startswith("/stream/"):
            statuses.add(416)
    return statuses


def declare_errors(app: FastAPI) -> None:
    """Publish the shared error response on every operation for each status it can return.

    FastAPI's own 422 (``HTTPValidationError``) is replaced: our handlers never send that shape.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_errors(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_errors(spec: dict[str, Any]) -> None:
    """Add :class:`ErrorOut` to ``spec`` and reference it from every operation's error statuses."""
    error = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(error.pop("$defs", {}))
    schemas["ErrorOut"] = error
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(path, method, operation)):
                responses[str(status)] = {
                    "description": HTTPStatus(status).phrase,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
                }


__all__ = ["ErrorDetail", "ErrorOut", "add_errors", "declare_errors", "error_statuses"]
