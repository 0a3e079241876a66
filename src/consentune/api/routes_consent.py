"""Terms and artists' consent."""

from __future__ import annotations

from fastapi import APIRouter

from consentune.api.deps import Caller, Service
from consentune.api.schemas import AcceptIn, ConsentIn, ConsentOut, RuleOut, TermsIn, TermsOut
from consentune.auth import Principal
from consentune.errors import AccessDenied
from consentune.service import Consentune
from consentune.types import Artist, ArtistId, Purpose, Role, TrackId

router = APIRouter(prefix="/v1", tags=["consent"])


def _own_artist(service: Consentune, caller: Principal) -> Artist:
    if caller.role is not Role.ARTIST or caller.artist_id is None:
        raise AccessDenied("/v1/me/* needs an artist key", hint="admins use /v1/artists/{id}/consent")
    return service.catalog.artist(caller.artist_id)


def _apply(service: Consentune, caller: Principal, artist: Artist, body: ConsentIn) -> RuleOut:
    rule = service.consent.set(
        artist,
        purpose=Purpose(body.purpose),
        allow=body.allow,
        actor=caller.actor,
        track=TrackId(body.track_id) if body.track_id else None,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
    )
    return RuleOut.of(rule)


@router.get("/me/consent", response_model=ConsentOut)
def my_consent(service: Service, caller: Caller) -> ConsentOut:
    return ConsentOut.of(service.consent.view(_own_artist(service, caller)))


@router.put("/me/consent", response_model=RuleOut)
def set_my_consent(body: ConsentIn, service: Service, caller: Caller) -> RuleOut:
    return _apply(service, caller, _own_artist(service, caller), body)


@router.delete("/me/consent/tracks/{track_id}/{purpose}", response_model=RuleOut)
def clear_my_track_consent(track_id: str, purpose: str, service: Service, caller: Caller) -> RuleOut:
    """End a track's own choice for ``purpose``: it follows the all-tracks choice again."""
    artist = _own_artist(service, caller)
    rule = service.consent.clear(artist, purpose=Purpose(purpose), track=TrackId(track_id), actor=caller.actor)
    return RuleOut.of(rule)


@router.post("/me/terms/accept", response_model=ConsentOut)
def accept_terms(body: AcceptIn, service: Service, caller: Caller) -> ConsentOut:
    artist = _own_artist(service, caller)
    service.consent.accept_terms(artist, version=body.version, actor=caller.actor)
    return ConsentOut.of(service.consent.view(service.catalog.artist(artist.id)))


@router.get("/artists/{artist_id}/consent", response_model=ConsentOut)
def artist_consent(artist_id: str, service: Service, caller: Caller) -> ConsentOut:
    artist = service.catalog.artist(artist_id)
    caller.require_artist(ArtistId(artist.id))
    return ConsentOut.of(service.consent.view(artist))


@router.put("/artists/{artist_id}/consent", response_model=RuleOut)
def set_artist_consent(artist_id: str, body: ConsentIn, service: Service, caller: Caller) -> RuleOut:
    artist = service.catalog.artist(artist_id)
    caller.require_artist(ArtistId(artist.id))
    return _apply(service, caller, artist, body)


@router.delete("/artists/{artist_id}/consent/tracks/{track_id}/{purpose}", response_model=RuleOut)
def clear_artist_track_consent(
    artist_id: str, track_id: str, purpose: str, service: Service, caller: Caller
) -> RuleOut:
    """End a track's own choice for ``purpose``: it follows the artist's all-tracks choice again."""
    artist = service.catalog.artist(artist_id)
    caller.require_artist(ArtistId(artist.id))
    rule = service.consent.clear(artist, purpose=Purpose(purpose), track=TrackId(track_id), actor=caller.actor)
    return RuleOut.of(rule)


@router.get("/terms", response_model=list[TermsOut])
def list_terms(service: Service, caller: Caller) -> list[TermsOut]:
    return [TermsOut.of(t) for _, t in sorted(service.consent.all_terms().items())]


@router.get("/terms/current", response_model=TermsOut)
def current_terms(service: Service, caller: Caller) -> TermsOut:
    return TermsOut.of(service.consent.current_terms())


@router.post("/admin/terms", response_model=TermsOut, status_code=201)
def publish_terms(body: TermsIn, service: Service, caller: Caller) -> TermsOut:
    caller.require(Role.ADMIN)
    return TermsOut.of(service.consent.publish_terms(body.kinds, summary=body.summary, actor=caller.actor))
