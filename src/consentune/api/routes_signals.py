"""Machine-readable AI-use signals generated from the consent registry: robots.txt, TDMRep, XMP."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from consentune.api.deps import Service

router = APIRouter(tags=["signals"])


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/robots.txt", response_class=PlainTextResponse)
def robots(request: Request, service: Service) -> str:
    """AI crawlers may fetch only pages of tracks whose artists allow AI training; streams: nobody."""
    return service.listen.policy.robots_txt(base_url=_base(request))


@router.get("/.well-known/tdmrep.json")
def tdmrep(request: Request, service: Service) -> JSONResponse:
    return JSONResponse(service.listen.policy.tdmrep(base_url=_base(request)))


@router.get("/v1/listen/tracks/{track_id}/policy.xmp")
def xmp_sidecar(track_id: str, service: Service) -> Response:
    """XMP sidecar carrying plus:DataMining for formats that cannot embed XMP (FLAC, Ogg)."""
    _index, track = service.listen.indexed(track_id)
    data = service.listen.policy.sidecar(track, artist=service.listen.artist_name(track.artist_id))
    return Response(data, media_type="application/rdf+xml")
