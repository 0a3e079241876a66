"""Two "hosts" (own data folders) over one database and what every machine mounts or reaches:
an upload through host A plays and downloads through host B, and is matched there; a model trained on A
serves on B."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.config import Settings
from consentune.errors import VerificationFailed
from consentune.identify.replica import REFRESH_S
from consentune.scheduler import LEADER_LEASE
from consentune.service import Consentune, open_service
from consentune.types import IDENTIFY, PlayEvent, Role
from tests.cli import run
from tests.identify.conftest import SAMPLE_RATE, song
from tests.identify.test_service import optional_identify_terms, wav
from tests.s3server import client, s3_bucket, s3_endpoint

__all__ = ["s3_bucket", "s3_endpoint"]  # fixtures used below
T0 = 1_800_000_000.0
T1 = datetime(2026, 10, 1, tzinfo=UTC)
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"


@pytest.fixture
def hosts(
    tmp_path: Path, postgres_url: str, s3_endpoint: str, s3_bucket: str, capsys: pytest.CaptureFixture[str]
) -> Iterator[tuple[Consentune, Consentune]]:
    secrets = tmp_path / "mounted-secrets"
    assert run(capsys, "secrets", "init", str(secrets))[0] == 0
    opened = [
        open_service(
            Settings(
                home=tmp_path / name, database_url=postgres_url, env="production", secrets_dir=secrets,
                blob_url=f"s3://{s3_bucket}/originals", s3_endpoint_url=s3_endpoint,
                models_url=f"s3://{s3_bucket}/models", anonymous_audio="full",
            )
        )
        for name in ("host-a", "host-b")
    ]  # fmt: skip
    yield opened[0], opened[1]
    for svc in opened:
        svc.close()


def _headers(token: str | None = None, **extra: str) -> dict[str, str]:
    out = {"User-Agent": BROWSER, **extra}
    return {**out, "X-Session-Token": token} if token else out


def test_an_upload_through_host_a_plays_and_downloads_on_host_b(
    hosts: tuple[Consentune, Consentune], audio_files: dict[str, bytes], tmp_path: Path
) -> None:
    a, b = hosts
    ada = a.catalog.add_artist("Ada", actor="admin:test")
    track = a.catalog.ingest(audio_files["flac"], filename="x.flac", artist=ada, title="X", actor="t").track
    assert not any((tmp_path / "host-a").rglob("*.flac")) and not (tmp_path / "host-a" / "blobs").exists()
    admin = {"Authorization": f"Bearer {a.keys.create(role=Role.ADMIN)[1]}"}
    with (
        TestClient(create_app(a), client=("203.0.113.9", 1)) as on_a,
        TestClient(create_app(b), client=("203.0.113.9", 1)) as on_b,
    ):
        assert on_b.get("/v1/ready").json()["parts"]["blob_store"]["ok"] is True
        download = on_b.get(f"/v1/tracks/{track.id}/audio?purpose=identify", headers=admin)
        assert download.status_code == 200 and download.content == audio_files["flac"]
        token = on_a.post("/v1/listen/sessions", headers=_headers()).json()["session_token"]
        url = on_a.post(f"/v1/listen/tracks/{track.id}/play", headers=_headers(token)).json()["stream_url"]
        from_b = on_b.get(url, headers=_headers(token, Range="bytes=0-999"))  # stream token sealed on A
        from_a = on_a.get(url, headers=_headers(token, Range="bytes=0-999"))
    assert from_b.status_code == 206 and from_b.content == from_a.content and len(from_b.content) == 1000
    assert a.ledger.verifier_key == b.ledger.verifier_key


def test_an_upload_through_host_a_is_matched_on_host_b_and_a_revocation_on_a_unindexes_it_on_b(
    hosts: tuple[Consentune, Consentune], s3_endpoint: str, s3_bucket: str
) -> None:
    a, b = hosts
    original = song(21, duration_s=30.0)
    ada = a.catalog.add_artist("Ada", actor="admin:test")
    track = a.catalog.ingest(wav(original), filename="a.wav", artist=ada, title=None, actor="t").track
    excerpt = wav(original[12 * SAMPLE_RATE : 20 * SAMPLE_RATE])
    assert {m.track_id for m in b.identify.identify(excerpt, actor="admin:test")} == {track.id}
    bo = b.catalog.add_artist("Bo", actor="admin:test")  # Bo re-uploads Ada's song through host B
    copy = b.catalog.ingest(wav(original[5 * SAMPLE_RATE :]), filename="b.wav", artist=bo, title=None, actor="t")
    assert [m.matched_track_id for m in b.identify.matches_for(copy.track.id)] == [track.id]
    time.sleep(REFRESH_S)  # a copy reads the feed at most this long after its last read
    assert a.identify.index.contains(copy.track.id)  # and B's fingerprints reach A
    a.organize.analyze([track.id, copy.track.id], actor="admin:test")  # descriptors written on A ...
    assert [n.track for n in b.organize.similar(track.id, n=3, actor="admin:test") or []] == [copy.track.id]  # ... B

    ada = optional_identify_terms(a, ada)
    a.consent.revoke(ada, purpose=IDENTIFY, actor="admin:test")
    assert not a.identify.index.contains(track.id)
    time.sleep(REFRESH_S)
    assert not b.identify.index.contains(track.id)
    listed = client(s3_endpoint).list_objects_v2(Bucket=s3_bucket, Prefix="models/fingerprints/")
    assert {item["Key"] for item in listed.get("Contents", [])} == {f"models/fingerprints/{copy.track.id}.bin"}


def test_a_host_joining_a_shared_index_catches_up_at_start_up_not_in_its_first_request(
    hosts: tuple[Consentune, Consentune],
) -> None:
    a, b = hosts
    ada = a.catalog.add_artist("Ada", actor="admin:test")
    tracks = [
        a.catalog.ingest(wav(song(30 + i, duration_s=8.0)), filename=f"{i}.wav", artist=ada, title=None, actor="t")
        for i in range(2)
    ]
    assert b.identify.index.local.track_count() == 0  # type: ignore[attr-defined]  # B has not looked yet
    assert b.leases is not None  # another worker leads the scheduler, so B's start runs no sweep
    assert b.leases.acquire(LEADER_LEASE, holder="another-worker", ttl_s=600, now_us=time.time_ns() // 1000)
    with TestClient(create_app(b)):
        deadline = time.monotonic() + 60  # a hang guard, not a speed target
        while b.identify.index.local.track_count() < 2 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.05)  # no request has been made: only start-up can have caught B's copy up
        assert set(b.identify.index.local.track_ids()) == {t.track.id for t in tracks}  # type: ignore[attr-defined]


@pytest.fixture(params=["folder", "s3"])
def models_at(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """Where both hosts publish and read models (a folder both mount, or a bucket) and the S3 endpoint."""
    if request.param == "folder":
        return str(tmp_path / "mounted-models"), None
    bucket: str = request.getfixturevalue("s3_bucket")
    endpoint: str = request.getfixturevalue("s3_endpoint")
    return f"s3://{bucket}/models", endpoint


def _trained_pair(tmp_path: Path, database_url: str, models: tuple[str, str | None], audio: dict[str, bytes], *,
                  secrets: tuple[str, str]) -> tuple[Consentune, Consentune]:  # fmt: skip
    models_url, endpoint = models
    a, b = (
        open_service(Settings(home=tmp_path / name, database_url=database_url, models_url=models_url,
                              secrets_dir=tmp_path / secret, s3_endpoint_url=endpoint, identify_at_ingest=False))
        for name, secret in zip(("host-a", "host-b"), secrets, strict=True)
    )  # fmt: skip
    ada = a.catalog.add_artist("Ada", actor="admin:test")
    tracks = [a.catalog.ingest(data, filename=f"{fmt}.bin", artist=ada, title=fmt, actor="t").track.id
              for fmt, data in audio.items()]  # fmt: skip
    a.store.add_plays(
        [PlayEvent(f"user{u}", tracks[(u + k) % len(tracks)], T1 + timedelta(minutes=10 * u + k), 120_000)
         for u in range(30) for k in range(3)]
    )  # fmt: skip
    a.recommend.train(actor="admin:test")
    return a, b


def test_a_model_trained_on_host_a_serves_on_host_b(
    tmp_path: Path, database_url: str, models_at: tuple[str, str | None], audio_files: dict[str, bytes]
) -> None:
    a, b = _trained_pair(tmp_path, database_url, models_at, audio_files, secrets=("secrets", "secrets"))
    try:
        assert not (tmp_path / "host-a" / "models").exists() and not (tmp_path / "host-b" / "models").exists()
        on_b = [r.track for r in b.recommend.for_user("user1", n=5, actor="service:test")]
        on_a = [r.track for r in a.recommend.for_user("user1", n=5, actor="service:test")]
        assert on_b and on_b == on_a
    finally:
        a.close()
        b.close()


def test_a_model_sealed_by_another_deployment_is_refused(
    tmp_path: Path, sqlite_url: str, audio_files: dict[str, bytes]
) -> None:
    a, b = _trained_pair(tmp_path, sqlite_url, (str(tmp_path / "mounted-models"), None), audio_files,
                         secrets=("secrets-a", "secrets-b"))  # fmt: skip
    try:
        with pytest.raises(VerificationFailed) as caught:
            b.recommend.for_user("user1", n=5, actor="service:test")
        assert "seal" in caught.value.message and "CONSENTUNE_SECRETS_DIR" in caught.value.hint
    finally:
        a.close()
        b.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'shared.db'}"
