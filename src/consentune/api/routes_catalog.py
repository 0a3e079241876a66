"""Artists, tracks and uploads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, UploadFile
from fastapi.responses import Response

from consentune import auth
from consentune.api.deps import Caller, Service
from consentune.api.schemas import MAX_INT, PURPOSE_PATTERN, ArtistIn, ArtistOut, IngestOut, MeOut, TagsIn, TrackOut
from consentune.errors import AccessDenied, AudioRejected, InvalidInput
from consentune.types import Artist, Purpose, Role, Track, TrackId

router = APIRouter(prefix="/v1", tags=["catalog"])


def visible_track(service: Service, caller: Caller, track_id: str) -> Track:
    """The track, if the caller may see it; an artist never learns of others' tracks."""
    return auth.visible_track(service.catalog, caller, track_id)


@router.get("/me", response_model=MeOut)
def me(service: Service, caller: Caller) -> MeOut:
    artist = service.catalog.artist(caller.artist_id) if caller.artist_id else None
    return MeOut(
        key_id=caller.key_id,
        role=caller.role.value,
        artist=ArtistOut.of(artist) if artist else None,
    )


@router.get("/artists", response_model=list[ArtistOut])
def list_artists(service: Service, caller: Caller) -> list[ArtistOut]:
    caller.require(Role.ADMIN, Role.SERVICE)
    return [ArtistOut.of(a) for a in service.catalog.artists()]


@router.post("/artists", response_model=ArtistOut, status_code=201)
def add_artist(body: ArtistIn, service: Service, caller: Caller) -> ArtistOut:
    caller.require(Role.ADMIN)
    return ArtistOut.of(service.catalog.add_artist(body.name, actor=caller.actor))


@router.get("/tracks", response_model=list[TrackOut])
def list_tracks(
    service: Service,
    caller: Caller,
    artist: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
) -> list[TrackOut]:
    owner: Artist | None
    if caller.role is Role.ARTIST:
        assert caller.artist_id is not None
        owner = service.catalog.artist(caller.artist_id)
        if artist is not None and artist not in (owner.id, owner.name):
            raise AccessDenied("you may only list your own tracks", hint="omit ?artist= to list yours")
    else:
        owner = service.catalog.artist(artist) if artist else None
    return [TrackOut.of(t) for t in service.catalog.tracks(artist=owner, limit=limit, offset=offset)]


@router.get("/tracks/{track_id}", response_model=TrackOut)
def get_track(track_id: str, service: Service, caller: Caller) -> TrackOut:
    track = visible_track(service, caller, track_id)
    return TrackOut.of(track, service.catalog.tags([track.id]).get(track.id))


@router.put("/tracks/{track_id}/tags", response_model=TrackOut)
def set_tags(track_id: str, body: TagsIn, service: Service, caller: Caller) -> TrackOut:
    """Replace a track's tags (its artist or an admin); tags feed cold-start recommendations."""
    track = visible_track(service, caller, track_id)
    caller.require_artist(track.artist_id)
    return TrackOut.of(track, service.catalog.set_tags(track, body.tags))


@router.post("/tracks", response_model=IngestOut, status_code=201)
def upload_track(
    service: Service,
    caller: Caller,
    background: BackgroundTasks,
    file: Annotated[UploadFile, File(description="WAV, FLAC, OGG Vorbis, Opus or MP3")],
    title: Annotated[str | None, Form(max_length=200)] = None,
    artist: Annotated[str | None, Form(max_length=200, description="artist id or name (admin only)")] = None,
    tags: Annotated[
        str | None, Form(max_length=4000, description="comma-separated tags, e.g. 'ambient, piano'")
    ] = None,
) -> IngestOut:
    if caller.role is Role.ARTIST:
        assert caller.artist_id is not None
        owner = service.catalog.artist(caller.artist_id)
        if artist is not None and artist not in (owner.id, owner.name):
            raise AccessDenied("artists upload only as themselves", hint="omit the artist field")
    else:
        caller.require(Role.ADMIN)
        if not artist:
            raise InvalidInput("admin uploads must name the artist", hint="add the form field artist=<id or name>")
        owner = service.catalog.artist(artist)
    limit = service.settings.max_upload_bytes
    data = file.file.read(limit + 1)  # a plain def route runs in the threadpool: decoding never blocks the loop
    if len(data) > limit:
        raise AudioRejected(
            f"upload is over the {limit}-byte limit",
            reason="too_large",
            hint="upload a shorter or more compressed file",
        )
    result = service.catalog.ingest(
        data,
        filename=file.filename or "upload",
        artist=owner,
        title=title,
        actor=caller.actor,
        tags=tags.split(",") if tags else (),
    )
    if result.created:  # describe it after the response; the gate refuses it if `organize` is not allowed
        background.add_task(service.organize.analyze, [result.track.id], actor="system:organize-on-ingest")
    return IngestOut(
        track=TrackOut.of(result.track, service.catalog.tags([result.track.id]).get(result.track.id)),
        created=result.created,
    )


@router.get("/tracks/{track_id}/audio", responses={200: {"content": {"application/octet-stream": {}}}})
def read_audio(
    track_id: str,
    purpose: Annotated[str, Query(max_length=64, json_schema_extra={"pattern": PURPOSE_PATTERN})],
    service: Service,
    caller: Caller,
) -> Response:
    """Original audio for a named purpose; the gate decides and the ledger records it."""
    caller.require(Role.SERVICE, Role.ADMIN)
    grant = service.gate.request(actor=caller.actor, purpose=Purpose(purpose), tracks=[TrackId(track_id)])
    if not grant.allowed:
        reason = grant.denied[0].reason
        raise AccessDenied(
            f"{purpose} is not allowed for track {track_id}: {reason}",
            hint="respect the artist's choice",
        )
    return Response(service.gate.read_audio(grant.allowed[0]), media_type="application/octet-stream")
