"""Content organization: descriptors, similar tracks, duplicates, tag normalization."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AfterValidator, BaseModel, Field

from consentune.api.deps import Caller, Service
from consentune.api.routes_catalog import visible_track
from consentune.api.schemas import storable
from consentune.errors import NotFound
from consentune.organize.tags import MAX_TAG_CHARS, Vocabulary
from consentune.types import Role, TrackId

TrackPath = Annotated[str, Path(min_length=1, max_length=32), AfterValidator(storable)]

router = APIRouter(prefix="/v1", tags=["organize"])


class DescriptorsOut(BaseModel):
    track: str
    duration_s: float
    tempo_bpm: float | None
    tempo_confidence: float
    key: str | None
    key_confidence: float
    loudness_lufs: float | None = Field(description="integrated loudness, ITU-R BS.1770-4 / EBU R128")
    peak_dbfs: float | None
    silent: bool
    top_tags: list[tuple[str, float]] = Field(description="musicnn (MagnaTagATune) auto-tags, best first")
    autotags: dict[str, float] | None = Field(description="every musicnn tag probability")


class NeighbourOut(BaseModel):
    track: str
    similarity: float


class DuplicateOut(BaseModel):
    track: str
    kind: str
    score: float


class TagsNormalizeIn(BaseModel):
    tags: list[Annotated[str, Field(max_length=MAX_TAG_CHARS), AfterValidator(storable)]] = Field(
        min_length=1, max_length=1000
    )


class LabelOut(BaseModel):
    facet: str
    value: str
    path: list[str] = Field(description="root-first path in the facet's tree, e.g. ['rock', 'alternative', 'indie']")


class NormalizedTagOut(BaseModel):
    tag: str
    labels: list[LabelOut]
    method: str | None


def _not_analysed(track_id: str) -> NotFound:
    return NotFound(
        f"track {track_id} has no descriptors yet",
        hint=f"analysis runs after upload; or run `consentune organize analyze {track_id}`",
    )


@router.get("/tracks/{track_id}/descriptors", response_model=DescriptorsOut)
def descriptors(track_id: TrackPath, service: Service, caller: Caller) -> DescriptorsOut:
    """Tempo, key, loudness and duration (read through the gate under `organize`)."""
    track = visible_track(service, caller, track_id)
    found = service.organize.descriptors(track.id, actor=caller.actor)
    if found is None:
        raise _not_analysed(track_id)
    return DescriptorsOut.model_validate({**found.summary(), "track": track.id, "top_tags": found.top_tags()})


@router.get("/tracks/{track_id}/similar", response_model=list[NeighbourOut])
def similar(
    track_id: TrackPath, service: Service, caller: Caller, n: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[NeighbourOut]:
    """The most similar tracks by sound; only tracks whose `organize` consent holds right now."""
    caller.require(Role.SERVICE, Role.ADMIN)
    found = service.organize.similar(TrackId(track_id), n=n, actor=caller.actor)
    if found is None:
        raise _not_analysed(track_id)
    return [NeighbourOut(track=f.track, similarity=f.similarity) for f in found]


@router.get("/tracks/{track_id}/duplicates", response_model=list[DuplicateOut])
def duplicates(track_id: TrackPath, service: Service, caller: Caller) -> list[DuplicateOut]:
    """Other consenting tracks that are the same recording (exact: the same original bytes)."""
    caller.require(Role.SERVICE, Role.ADMIN)
    matches = service.organize.duplicates(TrackId(track_id), actor=caller.actor)
    return [DuplicateOut(track=m.track, kind=m.kind, score=m.score) for m in matches]


@router.post("/tags/normalize", response_model=list[NormalizedTagOut])
def normalize_tags(body: TagsNormalizeIn, service: Service, caller: Caller) -> list[NormalizedTagOut]:
    """Map free tags to facets (genre tree, era, mood, vocals, origin, instrument, non-descriptor)."""
    del caller  # any authenticated caller
    found = service.organize.normalize_tags(body.tags)
    vocab = Vocabulary.packaged()
    return [
        NormalizedTagOut(
            tag=t.tag,
            labels=[LabelOut(facet=lb.facet, value=lb.value, path=vocab.path(lb)) for lb in t.labels],
            method=t.method,
        )
        for t in found
    ]
