"""Machine-readable AI-use signals generated from the consent registry: robots.txt, TDMRep, XMP.

Public, so behind the shield's guard like every listener page (rate limits per address, blocks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from consentune.api.deps import Service
from consentune.api.routes_listen import shield_page
from consentune.shield.policy import Rendered

router = APIRouter(tags=["signals"])


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "the client's copy (If-None-Match) is current"}}


@router.get("/robots.txt", response_class=PlainTextResponse, responses=_NOT_MODIFIED)
def robots(request: Request, service: Service) -> Response:
    """AI crawlers: track pages only when some artist may allow AI training (each page's headers give its
    track's answer); streams: nobody.  Conditional requests (``If-None-Match``) get 304."""
    shield_page(request, service)
    rendered = service.listen.policy.robots(base_url=_base(request))
    return _cached(request, service, rendered, lambda: PlainTextResponse(rendered.value))


@router.get("/.well-known/tdmrep.json", responses=_NOT_MODIFIED)
def tdmrep(request: Request, service: Service) -> Response:
    shield_page(request, service)
    rendered = service.listen.policy.tdmrep_rendered(base_url=_base(request))
    return _cached(request, service, rendered, lambda: JSONResponse(rendered.value))


def _cached(request: Request, service: Service, rendered: Rendered[Any], body: Callable[[], Response]) -> Response:
    """The signal with ``ETag`` and ``Cache-Control``, or 304 when the client's copy is current."""
    headers = {"ETag": rendered.etag, "Cache-Control": f"public, max-age={int(service.settings.signal_ttl_s)}"}
    match = request.headers.get("if-none-match", "")
    if rendered.etag in (tag.strip().removeprefix("W/") for tag in match.split(",")) or match.strip() == "*":
        return Response(status_code=304, headers=headers)
    response = body()
    response.headers.update(headers)
    return response


@router.get(
    "/v1/listen/tracks/{track_id}/policy.xmp",
    response_class=Response,
    responses={200: {"content": {"application/rdf+xml": {"schema": {"type": "string"}}}}},
)
def xmp_sidecar(track_id: str, request: Request, service: Service) -> Response:
    """XMP sidecar carrying plus:DataMining for formats that cannot embed XMP (FLAC, Ogg)."""
    shield_page(request, service)
    _index, track = service.listen.indexed(track_id)
    data = service.listen.policy.sidecar(track, artist=service.listen.artist_name(track.artist_id))
    return Response(data, media_type="application/rdf+xml")
