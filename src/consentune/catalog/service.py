"""Catalog: artists and tracks; uploads enter through the gate and are logged."""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath, PureWindowsPath

from consentune.errors import AudioRejected, InvalidInput, NotFound
from consentune.gate import PurposeGate
from consentune.ledger.log import UsageLedger, UsageRecord
from consentune.ports import CatalogRepo, ConsentRepo, Transactions
from consentune.types import Artist, ArtistId, Track, TrackId

IngestHook = Callable[[Track, str], object]
_NAME_MAX = 200
_TITLE_MAX = 300


@dataclass(frozen=True, slots=True)
class IngestResult:
    track: Track
    created: bool


def _utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def safe_filename(name: str) -> str:
    """Accept a bare file name only; anything that looks like a path is refused."""
    if not name or name in {".", ".."} or len(name) > 255:
        raise InvalidInput(
            f"file name {name!r} is empty or too long",
            hint="send a plain file name such as 'song.flac'",
        )
    bad = any(unicodedata.category(ch).startswith("C") for ch in name)
    if bad or PurePosixPath(name).name != name or PureWindowsPath(name).name != name or ".." in name:
        raise InvalidInput(
            f"file name {name!r} contains path parts or control characters",
            hint="send only the base name of the file, e.g. 'song.flac'",
        )
    return name


def _clean_text(value: str, *, what: str, limit: int) -> str:
    text = unicodedata.normalize("NFC", value).strip()
    if not text or len(text) > limit or any(unicodedata.category(c).startswith("C") for c in text):
        raise InvalidInput(
            f"{what} {value!r} must be 1–{limit} printable characters",
            hint=f"give a shorter {what} without control characters",
        )
    return text


_MAX_TAGS = 32


def normalize_tags(tags: Sequence[str]) -> list[str]:
    """Lower-case, trimmed, deduplicated tags; a bad tag is an error naming it, never silently dropped."""
    clean: list[str] = []
    for raw in tags:
        tag = unicodedata.normalize("NFC", raw).strip().lower()
        if not tag:
            continue
        if len(tag) > 64 or any(unicodedata.category(c).startswith("C") for c in tag):
            raise InvalidInput(f"tag {raw!r} must be 1–64 printable characters", hint="shorten the tag")
        clean.append(tag)
    clean = list(dict.fromkeys(clean))
    if len(clean) > _MAX_TAGS:
        raise InvalidInput(f"{len(clean)} tags given; at most {_MAX_TAGS}", hint="keep the most descriptive tags")
    return clean


class Catalog:
    def __init__(
        self,
        *,
        repo: CatalogRepo,
        consent: ConsentRepo,
        gate: PurposeGate,
        ledger: UsageLedger,
        transactions: Transactions,
        max_upload_bytes: int,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._repo = repo
        self._tx = transactions
        self._consent = consent
        self._gate = gate
        self._ledger = ledger
        self._max_upload_bytes = max_upload_bytes
        self._clock = clock
        self._ingest_hooks: list[IngestHook] = []

    def add_ingest_hook(self, hook: IngestHook) -> None:
        """Run ``hook(track, actor)`` after every newly stored upload (e.g. the re-upload check)."""
        self._ingest_hooks.append(hook)

    def add_artist(self, name: str, *, actor: str) -> Artist:
        terms = self._consent.all_terms()
        if not terms:
            raise NotFound("no terms published yet", hint="run `consentune terms publish`")
        artist = Artist(
            ArtistId(new_id("art")),
            _clean_text(name, what="artist name", limit=_NAME_MAX),
            self._clock(),
            max(terms),
        )
        with self._tx.transaction():
            self._repo.add_artist(artist)
            self._ledger.append(
                [
                    UsageRecord(
                        actor, "artist-add", None, None, "record", f"artist {artist.id} created", artist.terms_version
                    )
                ]
            )
        return artist

    def artist(self, ref: str) -> Artist:
        """Find an artist by id or exact name."""
        found = self._repo.get_artist(ArtistId(ref)) or self._repo.artist_by_name(ref)
        if found is None:
            raise NotFound(
                f"unknown artist {ref!r}",
                hint="create it with `consentune artist add NAME` or check the spelling",
            )
        return found

    def artists(self) -> list[Artist]:
        return self._repo.list_artists()

    def track(self, track_id: str) -> Track:
        found = self._repo.get_track(TrackId(track_id))
        if found is None:
            raise NotFound(f"unknown track {track_id!r}", hint="list tracks with `consentune tracks`")
        return found

    def tracks(self, *, artist: Artist | None = None, limit: int = 100, offset: int = 0) -> list[Track]:
        return self._repo.list_tracks(artist_id=artist.id if artist else None, limit=limit, offset=offset)

    def set_tags(self, track: Track, tags: Sequence[str]) -> list[str]:
        """Replace a track's tags (normalised; see :func:`normalize_tags`)."""
        clean = normalize_tags(tags)
        self._repo.set_track_tags(track.id, clean)
        return clean

    def tags(self, tracks: Sequence[TrackId]) -> dict[TrackId, list[str]]:
        return self._repo.track_tags(tracks)

    def ingest(
        self,
        data: bytes,
        *,
        filename: str,
        artist: Artist,
        title: str | None,
        actor: str,
        tags: Sequence[str] = (),
    ) -> IngestResult:
        """Validate, store content-addressed and register one upload; identical bytes are idempotent."""
        name = safe_filename(filename)
        if len(data) > self._max_upload_bytes:
            raise AudioRejected(
                f"{name} is {len(data)} bytes, over the {self._max_upload_bytes}-byte limit",
                reason="too_large",
                hint="upload a shorter or more compressed file, or raise CONSENTUNE_MAX_UPLOAD_BYTES",
            )
        # validate the title before the gate stores the blob, so a refused upload leaves no file
        clean_title = _clean_text(title or PurePosixPath(name).stem or name, what="title", limit=_TITLE_MAX)
        clean_tags = normalize_tags(tags)
        admitted = self._gate.admit_upload(data, filename=name)
        info = admitted.info
        track = Track(
            id=TrackId(new_id("trk")),
            artist_id=artist.id,
            title=clean_title,
            content_sha256=admitted.sha256,
            format=info.format,
            duration_s=round(info.duration_s, 3),
            sample_rate=info.sample_rate,
            channels=info.channels,
            size_bytes=admitted.size_bytes,
            created_at=self._clock(),
        )
        reason = f"stored original sha256:{admitted.sha256} ({info.format}, {info.duration_s:.1f} s)"
        try:
            with self._tx.transaction():  # the track, its ingest entry and its tags exist together or not at all
                stored, created = self._repo.add_track(track, filename=name, actor=actor)
                if created:
                    self._ledger.append(
                        [UsageRecord(actor, "ingest", None, stored.id, "record", reason, artist.terms_version)]
                    )
                    if clean_tags:
                        self._repo.set_track_tags(stored.id, clean_tags)
        except BaseException:
            self._gate.discard_upload(admitted)  # a failed registration leaves no orphan original behind
            raise
        try:
            if created:
                for hook in self._ingest_hooks:
                    hook(stored, actor)
        finally:
            self._gate.settle_upload(admitted)
        return IngestResult(stored, created)


__all__ = ["Catalog", "IngestHook", "IngestResult", "new_id", "normalize_tags", "safe_filename"]
