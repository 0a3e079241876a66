"""Organize over HTTP: descriptors, similar, duplicates, tag normalization; consent holds."""

from __future__ import annotations

from consentune.types import ORGANIZE
from tests.api.conftest import World


def _upload(world: World, data: bytes, name: str, key: dict[str, str]) -> str:
    response = world.client.post("/v1/tracks", headers=key, files={"file": (name, data, "audio/wav")})
    assert response.status_code == 201, response.text
    track: str = response.json()["track"]["id"]
    return track


def test_upload_is_analysed_and_served(world: World, audio_files: dict[str, bytes]) -> None:
    ada_wav = _upload(world, audio_files["wav"], "a.wav", world.ada_key)
    ada_flac = _upload(world, audio_files["flac"], "a.flac", world.ada_key)
    bo_wav = _upload(world, audio_files["wav"], "b.wav", world.bo_key)  # same bytes, another artist
    # the test client runs background tasks before returning: analysis on ingest is done
    got = world.client.get(f"/v1/tracks/{ada_wav}/descriptors", headers=world.ada_key)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["duration_s"] == 3.0 and body["loudness_lufs"] is not None and not body["silent"]
    assert world.client.get(f"/v1/tracks/{bo_wav}/descriptors", headers=world.ada_key).status_code == 404

    similar = world.client.get(f"/v1/tracks/{ada_wav}/similar?n=5", headers=world.service)
    assert similar.status_code == 200
    assert [n["track"] for n in similar.json()][:1] == [bo_wav]
    assert {n["track"] for n in similar.json()} == {bo_wav, ada_flac}
    assert world.client.get(f"/v1/tracks/{ada_wav}/similar", headers=world.ada_key).status_code == 403

    dupes = world.client.get(f"/v1/tracks/{ada_wav}/duplicates", headers=world.service).json()
    assert dupes == [{"track": bo_wav, "kind": "exact", "score": 1.0}]

    world.svc.consent.revoke(world.bo, purpose=ORGANIZE, actor="artist:bo")
    assert {n["track"] for n in world.client.get(f"/v1/tracks/{ada_wav}/similar", headers=world.service).json()} == {
        ada_flac
    }
    assert world.client.get(f"/v1/tracks/{ada_wav}/duplicates", headers=world.service).json() == []
    refused = world.client.get(f"/v1/tracks/{bo_wav}/descriptors", headers=world.bo_key)
    assert refused.status_code == 403 and refused.json()["error"]["hint"]


def test_no_consent_means_no_analysis_on_ingest(world: World, audio_files: dict[str, bytes]) -> None:
    world.svc.consent.set(world.ada, purpose=ORGANIZE, allow=False, actor="artist:ada")
    track = _upload(world, audio_files["wav"], "a.wav", world.ada_key)
    assert world.svc.store.feature_tracks().get(ORGANIZE, []) == []
    entries = world.svc.ledger.entries(range(world.svc.ledger.size))
    uses = [(e.action, e.decision) for e in entries if e.track == track and e.purpose == "organize"]
    assert uses == [("read-audio", "deny")]


def test_tags_normalize(world: World) -> None:
    response = world.client.post(
        "/v1/tags/normalize", headers=world.ada_key, json={"tags": ["Indie Rock", "80's", "asdfgh", "Bo"]}
    )
    assert response.status_code == 200
    out = {t["tag"]: t for t in response.json()}
    assert out["Indie Rock"]["labels"] == [
        {"facet": "genre", "value": "indie rock", "path": ["rock", "alternative", "indie", "indie rock"]}
    ]
    assert out["80's"]["labels"][0]["value"] == "1980s" and out["asdfgh"]["labels"] == []
    bad = world.client.post("/v1/tags/normalize", headers=world.ada_key, json={"tags": []})
    assert bad.status_code == 422
