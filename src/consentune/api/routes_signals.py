"""Machine-readable AI-use signals generated from the consent registry: robots.txt, TDMRep, XMP.

Public, so behind the shield's guard like every listener page (rate limits per address, blocks).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from consentune.api.deps import Service
from consentune.api.routes_listen import shield_page

router = APIRouter(tags=["signals"])


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/robots.txt", response_class=PlainTextResponse)
def robots(request: Request, service: Service) -> str:
    """AI crawlers may fetch only pages of tracks whose artists allow AI training; streams: nobody."""
    shield_page(request, service)
    return service.listen.policy.robots_txt(base_url=_base(request))


@router.get("/.well-known/tdmrep.json")
def tdmrep(request: Request, service: Service) -> JSONResponse:
    shield_page(request, service)
    return JSONResponse(service.listen.policy.tdmrep(base_url=_base(request)))


@router.get("/v1/listen/tracks/{track_id}/policy.xmp")
def xmp_sidecar(track_id: str, request: Request, service: Service) -> Response:
    """XMP sidecar carrying plus:DataMining for formats that cannot embed XMP (FLAC, Ogg)."""
    shield_page(request, service)
    _index, track = service.listen.indexed(track_id)
    data = service.listen.policy.sidecar(track, artist=service.listen.artist_name(track.artist_id))
    return Response(data, media_type="application/rdf+xml")
