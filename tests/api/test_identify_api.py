"""HTTP API for identification: POST /v1/identify and GET /v1/tracks/{id}/matches."""

from __future__ import annotations

import numpy as np
import pytest

from tests.api.conftest import World
from tests.identify.conftest import SAMPLE_RATE, crossfaded, song, speed_up, styled_song
from tests.identify.test_service import wav


def upload(w: World, headers: dict[str, str], data: bytes, name: str) -> str:
    r = w.client.post("/v1/tracks", headers=headers, files={"file": (name, data, "audio/wav")})
    assert r.status_code == 201, r.text
    return str(r.json()["track"]["id"])


@pytest.fixture
def original() -> np.ndarray:
    return song(31, duration_s=25.0)


def test_identify_and_matches_endpoints(world: World, original: np.ndarray) -> None:
    w = world
    ada_track = upload(w, w.ada_key, wav(original), "a.wav")
    bo_track = upload(w, w.bo_key, wav(speed_up(original, 21, 20)), "b.wav")  # 5 % slower copy
    r = w.client.get(f"/v1/tracks/{bo_track}/matches", headers=w.bo_key)
    assert r.status_code == 200
    [flag] = r.json()
    assert flag["upload_track_id"] == bo_track and flag["track_id"] == ada_track
    assert abs(flag["time_scale"] - 0.95) < 0.01
    assert w.client.get(f"/v1/tracks/{bo_track}/matches", headers=w.ada_key).status_code == 404  # not Ada's
    [seen_by_ada] = w.client.get(f"/v1/tracks/{ada_track}/matches", headers=w.ada_key).json()  # her original's copy
    assert seen_by_ada["upload_track_id"] == bo_track
    queue = w.client.get("/v1/admin/matches", headers=w.admin)
    assert queue.status_code == 200 and [(q["upload_track_id"], q["track_id"]) for q in queue.json()] == [
        (bo_track, ada_track)
    ]
    assert w.client.get("/v1/admin/matches", headers=w.bo_key).status_code == 403  # operators only

    query = wav(original[8 * SAMPLE_RATE : 16 * SAMPLE_RATE])
    r = w.client.post("/v1/identify", headers=w.service, files={"file": ("q.wav", query, "audio/wav")})
    assert r.status_code == 200
    body = r.json()
    assert body["matches"][0]["track_id"] in {ada_track, bo_track}
    assert all(m["score"] >= body["threshold"] for m in body["matches"])
    r = w.client.post("/v1/identify", headers=w.ada_key, files={"file": ("q.wav", query, "audio/wav")})
    assert r.status_code == 403
    r = w.client.post("/v1/identify", headers=w.service, files={"file": ("q.wav", b"junk" * 50, "audio/wav")})
    assert r.status_code == 422 and r.json()["error"]["code"] == "audio_rejected"


def test_mix_endpoint_returns_the_timeline(world: World) -> None:
    w = world
    songs = [styled_song(400 + n, duration_s=50.0) for n in range(2)]
    tracks = [upload(w, w.ada_key, wav(x), f"{n}.wav") for n, x in enumerate(songs)]
    mix = wav(crossfaded([*songs, styled_song(403, duration_s=50.0)]))  # the third is not in the catalogue
    r = w.client.post("/v1/identify/mix", headers=w.service, files={"file": ("mix.wav", mix, "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["track_id"] for s in body["segments"]] == [*tracks, None]
    assert body["segments"][0]["start_s"] == 0.0 and abs(body["segments"][0]["end_s"] - 45.0) <= 5.0
    assert all(s["confidence"] >= body["threshold"] for s in body["segments"] if s["track_id"])
    assert "/v1/identify/mix" in w.client.get("/openapi.json").json()["paths"]
    r = w.client.post("/v1/identify/mix", headers=w.ada_key, files={"file": ("mix.wav", mix, "audio/wav")})
    assert r.status_code == 403
    short = wav(songs[0][: 5 * SAMPLE_RATE])
    r = w.client.post("/v1/identify/mix", headers=w.service, files={"file": ("s.wav", short, "audio/wav")})
    assert r.status_code == 400 and "at least 20 s" in r.json()["error"]["message"]
