"""What FastAPI does not publish by itself: each operation's errors, its security, and links between operations.

Errors: every operation lists each 4xx/5xx it can answer.

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

Security: an operation that takes a caller key requires one, in either of two schemes (bearer or
``X-API-Key``).  Links: see :func:`_links`.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

_SHIELDED = ("/v1/listen/", "/stream/")
_CALLER_HEADER = "x-api-key"  # every route that takes a caller key declares it (see api.deps)


# A caller key goes in either header (api.deps.get_principal); every operation that takes one requires one.
_SECURITY_SCHEMES: dict[str, Any] = {
    "bearerKey": {"type": "http", "scheme": "bearer", "description": "an API key: `Authorization: Bearer <key>`"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "an API key"},
}


def _takes_caller_key(operation: Mapping[str, Any]) -> bool:
    return any(
        p.get("in") == "header" and str(p.get("name", "")).lower() == _CALLER_HEADER
        for p in operation.get("parameters", [])
    )


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
            spec = generate()
            add_errors(spec)
            add_links(spec)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# -- links: how one response names the resource another operation takes (OpenAPI 3 "links") ------------------
# (source method, source path, status, target method, target path, {target parameter: runtime expression}).
# Clients and stateful fuzzers (schemathesis) follow them: create an artist, then read and set its consent;
# upload or list a track, then read it, its receipt, its audio; create a key, then revoke it; list claims,
# then read, dispute and resolve one.  Listing keys links nowhere: revoking a listed key may revoke the caller's.
_ARTIST = {"artist_id": "$response.body#/id"}
_FIRST_ARTIST = {"artist_id": "$response.body#/0/id"}
_TRACK_PAGES = ("GET /v1/tracks/{track_id}", "GET /v1/tracks/{track_id}/receipt", "GET /v1/tracks/{track_id}/audio")
_TRACK_CHANGES = ("PUT /v1/tracks/{track_id}/tags",)
_CLAIM = ("GET /v1/claims/{claim_id}", "POST /v1/claims/{claim_id}/dispute", "POST /v1/claims/{claim_id}/resolve")
_ARTIST_CONSENT = ("GET /v1/artists/{artist_id}/consent", "PUT /v1/artists/{artist_id}/consent")
_RULE_DELETE = "DELETE /v1/artists/{artist_id}/consent/tracks/{track_id}/{purpose}"
_MY_RULE_DELETE = "DELETE /v1/me/consent/tracks/{track_id}/{purpose}"


def _track_links(pointer: str) -> list[tuple[str, dict[str, str]]]:
    """A track named at ``pointer`` in a response: its own pages and its artist's consent."""
    track = {"track_id": f"$response.body#{pointer}/id"}
    artist = {"artist_id": f"$response.body#{pointer}/artist_id"}
    return [(target, track) for target in (*_TRACK_PAGES, *_TRACK_CHANGES)] + [
        (target, artist) for target in _ARTIST_CONSENT
    ]


def _links() -> list[tuple[str, str, str, dict[str, str]]]:
    """(source "METHOD /path", status, target "METHOD /path", parameters) for every published link."""
    table: list[tuple[str, str, str, dict[str, str]]] = []

    def add(source: str, status: str, targets: list[tuple[str, dict[str, str]]]) -> None:
        table.extend((source, status, target, params) for target, params in targets)

    add("POST /v1/artists", "201", [(t, _ARTIST) for t in _ARTIST_CONSENT])
    add("GET /v1/artists", "200", [(t, _FIRST_ARTIST) for t in _ARTIST_CONSENT])
    add("POST /v1/tracks", "201", _track_links("/track"))
    add("GET /v1/tracks", "200", _track_links("/0"))
    add("GET /v1/tracks/{track_id}", "200", _track_links(""))
    rule = {"track_id": "$response.body#/track_id", "purpose": "$response.body#/purpose"}
    add(
        "PUT /v1/artists/{artist_id}/consent",
        "200",
        [
            (_RULE_DELETE, {**rule, "artist_id": "$request.path.artist_id"}),
            ("GET /v1/artists/{artist_id}/consent", {"artist_id": "$request.path.artist_id"}),
        ],
    )
    add("PUT /v1/me/consent", "200", [(_MY_RULE_DELETE, rule), ("GET /v1/me/consent", {})])
    add("POST /v1/admin/keys", "201", [("DELETE /v1/admin/keys/{key_id}", {"key_id": "$response.body#/id"})])
    add("GET /v1/claims", "200", [(t, {"claim_id": "$response.body#/0/id"}) for t in _CLAIM])
    add("GET /v1/claims/{claim_id}", "200", [(t, {"claim_id": "$response.body#/id"}) for t in _CLAIM[1:]])
    add("POST /v1/claims/{claim_id}/dispute", "200", [(_CLAIM[2], {"claim_id": "$response.body#/id"})])
    return table


def _operation_ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method.lower()


def add_links(spec: dict[str, Any]) -> None:
    """Publish :func:`_links` on their source responses; a link whose either end is not served is left out."""
    paths = spec.get("paths", {})

    def operation(endpoint: str) -> tuple[str, str, dict[str, Any]] | None:
        method, path = endpoint.split(" ", 1)
        found = paths.get(path, {}).get(method.lower())
        return (method, path, found) if found is not None else None

    for source, status, target, params in _links():
        src, dst = operation(source), operation(target)
        if src is None or dst is None or status not in src[2].get("responses", {}):
            continue
        name = (dst[0].lower() + dst[1]).replace("/", "_").replace("{", "").replace("}", "")
        links = src[2]["responses"][status].setdefault("links", {})
        links[name] = {"operationRef": _operation_ref(dst[1], dst[0]), "parameters": params}


def add_errors(spec: dict[str, Any]) -> None:
    """Add :class:`ErrorOut` to ``spec`` and reference it from every operation's error statuses."""
    error = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(error.pop("$defs", {}))
    schemas["ErrorOut"] = error
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    spec["components"]["securitySchemes"] = _SECURITY_SCHEMES
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if _takes_caller_key(operation):
                operation["security"] = [{name: []} for name in _SECURITY_SCHEMES]
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(path, method, operation)):
                responses[str(status)] = {
                    "description": HTTPStatus(status).phrase,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
                }


__all__ = ["ErrorDetail", "ErrorOut", "add_errors", "add_links", "declare_errors", "error_statuses"]
