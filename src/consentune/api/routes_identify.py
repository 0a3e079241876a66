"""Content identification: match uploaded audio; list possible re-uploads of a track."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, File, Query, UploadFile

from consentune.api.deps import Caller, Service
from consentune.api.routes_catalog import visible_track
from consentune.api.schemas import IdentifyOut, MatchOut, MixSegmentOut, StoredMatchOut, TracklistOut
from consentune.errors import AudioRejected
from consentune.identify import THRESHOLD
from consentune.identify.mix import HOP_S, WINDOW_S
from consentune.ports import StoredMatch
from consentune.types import Role

router = APIRouter(prefix="/v1", tags=["identify"])


@router.post("/identify", response_model=IdentifyOut)
def identify(
    service: Service,
    caller: Caller,
    file: Annotated[UploadFile, File(description="audio to identify (WAV, FLAC, OGG Vorbis, Opus or MP3); not stored")],
) -> IdentifyOut:
    """Match an excerpt against every track whose `identify` consent holds; each match is logged."""
    caller.require(Role.ADMIN, Role.SERVICE)
    found = service.identify.identify(_read(service, file), filename=file.filename or None, actor=caller.actor)
    return IdentifyOut(threshold=THRESHOLD, matches=[MatchOut(**dataclasses.asdict(m)) for m in found])


@router.post("/identify/mix", response_model=TracklistOut)
def identify_mix(
    service: Service,
    caller: Caller,
    file: Annotated[
        UploadFile, File(description="a DJ mix or live set (WAV, FLAC, OGG Vorbis, Opus or MP3); not stored")
    ],
) -> TracklistOut:
    """Tracklist of a mix: identified and unknown segments tiling it; each identified segment is logged."""
    caller.require(Role.ADMIN, Role.SERVICE)
    segments = service.identify.tracklist(_read(service, file), filename=file.filename or None, actor=caller.actor)
    return TracklistOut(
        threshold=THRESHOLD,
        window_s=WINDOW_S,
        hop_s=HOP_S,
        segments=[MixSegmentOut(**dataclasses.asdict(s)) for s in segments],
    )


def _read(service: Service, file: UploadFile) -> bytes:
    limit = service.settings.max_upload_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise AudioRejected(f"upload is over the {limit}-byte limit", reason="too_large", hint="send a shorter file")
    return data


def _out(m: StoredMatch) -> StoredMatchOut:
    return StoredMatchOut(
        upload_track_id=m.track_id,
        track_id=m.matched_track_id,
        score=m.score,
        matched=m.matched,
        query_start_s=m.query_start_s,
        query_end_s=m.query_end_s,
        ref_start_s=m.ref_start_s,
        ref_end_s=m.ref_end_s,
        time_scale=m.time_scale,
        pitch_semitones=m.pitch_semitones,
        created_at=m.created_at,
    )


@router.get("/tracks/{track_id}/matches", response_model=list[StoredMatchOut])
def track_matches(track_id: str, service: Service, caller: Caller) -> list[StoredMatchOut]:
    """Possible re-uploads involving this track, found when either track was ingested."""
    track = visible_track(service, caller, track_id)
    return [_out(m) for m in service.identify.matches_for(track.id)]


@router.get("/admin/matches", response_model=list[StoredMatchOut])
def recent_matches(
    service: Service, caller: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[StoredMatchOut]:
    """Operator review queue: the newest possible re-uploads across the catalogue."""
    caller.require(Role.ADMIN)
    return [_out(m) for m in service.identify.recent_matches(limit=limit)]
