"""Catalogue contract, on SQLite and PostgreSQL: ingest real audio, refuse bad uploads cleanly.

A refused upload must leave no trace: no track, no upload row, no blob file
and no ledger entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import pytest
from sqlalchemy import func, select

from consentune.demo import encode
from consentune.errors import AudioRejected, InvalidInput, NotFound
from consentune.gate import ACCEPTED_FORMATS
from consentune.service import Consentune, open_service
from consentune.storage import tables
from consentune.types import IDENTIFY, Artist

ACTOR = "artist:ada"


@dataclass(frozen=True)
class Snapshot:
    tracks: int
    uploads: int
    blob_files: tuple[str, ...]
    ledger_size: int


def _snapshot(svc: Consentune) -> Snapshot:
    with svc.store.engine.connect() as conn:
        uploads = int(conn.execute(select(func.count()).select_from(tables.uploads)).scalar_one())
    blob_dir = svc.settings.blob_dir
    files = (
        sorted(str(p.relative_to(blob_dir)) for p in blob_dir.rglob("*") if p.is_file()) if blob_dir.exists() else []
    )
    return Snapshot(svc.store.count_tracks(), uploads, tuple(files), svc.ledger.size)


@pytest.fixture
def ada(svc: Consentune) -> Artist:
    return svc.catalog.add_artist("Ada", actor="admin")


def _read_back(svc: Consentune, track_id: str) -> bytes:
    grant = svc.gate.request(actor="service:test", purpose=IDENTIFY, tracks=[track_id])  # type: ignore[list-item]
    (handle,) = grant.allowed
    return svc.gate.read_audio(handle)


@pytest.mark.parametrize("fmt", ACCEPTED_FORMATS)
def test_ingest_records_the_audio_and_stores_the_original(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes], fmt: str
) -> None:
    data = audio_files[fmt]
    before = _snapshot(svc)
    result = svc.catalog.ingest(data, filename=f"song.{fmt}", artist=ada, title=None, actor=ACTOR)
    track = result.track
    assert result.created
    assert (track.format, track.channels) == (fmt, 2)
    assert track.sample_rate == (48_000 if fmt == "opus" else 44_100)
    assert track.duration_s == pytest.approx(3.0, abs=0.06)
    assert track.size_bytes == len(data)
    assert track.content_sha256 == hashlib.sha256(data).hexdigest()
    assert track.title == "song" and track.artist_id == ada.id
    assert svc.catalog.track(track.id) == track
    after = _snapshot(svc)
    assert after.tracks == before.tracks + 1
    assert set(after.blob_files) - set(before.blob_files) == {
        f"{track.content_sha256[:2]}/{track.content_sha256[2:4]}/{track.content_sha256}"
    }
    assert _read_back(svc, track.id) == data
    # the ingest entry comes first; the re-upload check (identify) logs its own entries after it
    entry = next(e for e in svc.ledger.entries(range(before.ledger_size, after.ledger_size)) if e.action == "ingest")
    assert (entry.action, entry.track, entry.actor) == ("ingest", track.id, ACTOR)
    assert track.content_sha256 in entry.reason


def test_reingesting_identical_bytes_returns_the_same_track(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes]
) -> None:
    first = svc.catalog.ingest(audio_files["flac"], filename="a.flac", artist=ada, title="A", actor=ACTOR)
    before = _snapshot(svc)
    again = svc.catalog.ingest(audio_files["flac"], filename="renamed.flac", artist=ada, title="B", actor=ACTOR)
    assert not again.created
    assert again.track == first.track
    after = _snapshot(svc)
    assert (after.tracks, after.blob_files) == (before.tracks, before.blob_files)
    assert [t.id for t in svc.catalog.tracks(artist=ada)] == [first.track.id]


def test_same_bytes_from_another_artist_is_a_new_track_sharing_the_blob(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes]
) -> None:
    bob = svc.catalog.add_artist("Bob", actor="admin")
    mine = svc.catalog.ingest(audio_files["wav"], filename="x.wav", artist=ada, title=None, actor=ACTOR)
    before = _snapshot(svc)
    theirs = svc.catalog.ingest(audio_files["wav"], filename="x.wav", artist=bob, title=None, actor="artist:bob")
    assert theirs.created and theirs.track.id != mine.track.id
    assert theirs.track.content_sha256 == mine.track.content_sha256
    after = _snapshot(svc)
    assert after.tracks == before.tracks + 1
    assert after.blob_files == before.blob_files


@contextmanager
def _leaves_no_trace(svc: Consentune) -> Iterator[None]:
    """The block must leave the catalogue, uploads, blobs and ledger as they were."""
    before = _snapshot(svc)
    yield
    assert _snapshot(svc) == before


def _silence() -> bytes:
    return encode(np.zeros((2 * 44_100, 2), np.float32), 44_100, format="wav")


def _bad_audio(case: str, files: dict[str, bytes]) -> bytes:
    if case == "empty":
        return b""
    if case == "text":
        return b"these are the lyrics of a song, not a song\n" * 40
    if case == "truncated-flac":
        return files["flac"][: len(files["flac"]) * 2 // 3]
    return _silence()


EXPECTED_REASON = {"empty": "empty", "text": "not_audio", "truncated-flac": "corrupt", "silent-wav": "silent"}


@pytest.mark.parametrize("case", sorted(EXPECTED_REASON))
def test_bad_audio_is_rejected_with_its_reason(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes], case: str
) -> None:
    with _leaves_no_trace(svc), pytest.raises(AudioRejected) as caught:
        svc.catalog.ingest(_bad_audio(case, audio_files), filename="bad.wav", artist=ada, title=None, actor=ACTOR)
    assert caught.value.reason == EXPECTED_REASON[case]


def test_upload_over_the_size_limit_is_rejected(svc: Consentune, ada: Artist, audio_files: dict[str, bytes]) -> None:
    data = audio_files["wav"]
    small = open_service(replace(svc.settings, max_upload_bytes=len(data) - 1))
    try:
        with _leaves_no_trace(svc), pytest.raises(AudioRejected) as caught:
            small.catalog.ingest(data, filename="big.wav", artist=ada, title=None, actor=ACTOR)
        assert caught.value.reason == "too_large"
        assert str(len(data)) in caught.value.message
    finally:
        small.close()


def test_upload_over_the_duration_limit_is_rejected(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes]
) -> None:
    short = open_service(replace(svc.settings, max_duration_s=1.0))
    try:
        with _leaves_no_trace(svc), pytest.raises(AudioRejected) as caught:
            short.catalog.ingest(audio_files["ogg-vorbis"], filename="long.ogg", artist=ada, title=None, actor=ACTOR)
        assert caught.value.reason == "too_long"
    finally:
        short.close()


@pytest.mark.parametrize(
    "filename",
    ["../x.wav", "a/b.wav", "..\\x.wav", "x\x00.wav", "/etc/passwd", "C:x.wav", "..", "", "x\n.wav"],
)
def test_path_tricks_in_file_names_are_refused(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes], filename: str
) -> None:
    with _leaves_no_trace(svc), pytest.raises(InvalidInput) as caught:
        svc.catalog.ingest(audio_files["wav"], filename=filename, artist=ada, title=None, actor=ACTOR)
    assert not isinstance(caught.value, AudioRejected)
    assert repr(filename) in caught.value.message


@pytest.mark.parametrize("title", ["   ", "bad\x07title", "t" * 301])
def test_bad_titles_are_refused_before_anything_is_stored(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes], title: str
) -> None:
    with _leaves_no_trace(svc), pytest.raises(InvalidInput) as caught:
        svc.catalog.ingest(audio_files["mp3"], filename="ok.mp3", artist=ada, title=title, actor=ACTOR)
    assert not isinstance(caught.value, AudioRejected)


def test_unknown_artist_is_not_found(svc: Consentune) -> None:
    with _leaves_no_trace(svc), pytest.raises(NotFound) as caught:
        svc.catalog.artist("nobody")
    assert "nobody" in caught.value.message


class _RegistrationFails(Exception):
    pass


def _failing_registration(svc: Consentune, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise _RegistrationFails("database went away")

    monkeypatch.setattr(svc.catalog._repo, "add_track", refuse)


def test_a_failed_registration_leaves_no_orphan_original(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_registration(svc, monkeypatch)
    with _leaves_no_trace(svc), pytest.raises(_RegistrationFails):
        svc.catalog.ingest(audio_files["mp3"], filename="x.mp3", artist=ada, title=None, actor=ACTOR)


def test_a_failed_registration_keeps_an_original_another_track_uses(
    svc: Consentune, ada: Artist, audio_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = svc.catalog.add_artist("Bob", actor="admin")
    mine = svc.catalog.ingest(audio_files["wav"], filename="x.wav", artist=ada, title=None, actor=ACTOR)
    _failing_registration(svc, monkeypatch)
    with _leaves_no_trace(svc), pytest.raises(_RegistrationFails):
        svc.catalog.ingest(audio_files["wav"], filename="x.wav", artist=bob, title=None, actor="artist:bob")
    monkeypatch.undo()
    assert _read_back(svc, mine.track.id) == audio_files["wav"]
