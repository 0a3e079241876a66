"""Fraud service on a real store: artist-scoped alerts, flagged plays left out of training and counts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.fraud import Alert
from consentune.service import Consentune
from consentune.types import ArtistId, PlayEvent, Role, TrackId

T0 = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass
class World:
    svc: Consentune
    client: TestClient
    ada_tracks: list[TrackId]
    bo_tracks: list[TrackId]
    keys: dict[str, dict[str, str]]


@pytest.fixture
def world(svc: Consentune, audio_files: dict[str, bytes]) -> Iterator[World]:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    bo = svc.catalog.add_artist("Bo", actor="admin:test")
    own: dict[str, list[TrackId]] = {"Ada": [], "Bo": []}
    for i, fmt in enumerate(("wav", "flac", "ogg-vorbis", "mp3")):
        artist = ada if i < 2 else bo
        done = svc.catalog.ingest(audio_files[fmt], filename=f"{fmt}.bin", artist=artist, title=fmt, actor="t")
        own[artist.name].append(done.track.id)
    keys = {
        "admin": svc.keys.create(role=Role.ADMIN)[1],
        "service": svc.keys.create(role=Role.SERVICE)[1],
        "ada": svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(ada.id))[1],
        "bo": svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(bo.id))[1],
    }
    with TestClient(create_app(svc), raise_server_exceptions=False) as client:
        yield World(svc, client, own["Ada"], own["Bo"], {k: {"Authorization": f"Bearer {v}"} for k, v in keys.items()})


def _alert(alert_id: str, members: list[str], tracks: list[TrackId], start: datetime, hours: float) -> Alert:
    begin = start.timestamp()
    return Alert(
        id=alert_id,
        score=0.9,
        raised_at=begin + 1800,
        updated_at=begin + 1800,
        window_start=begin,
        window_end=begin + hours * 3600,
        members=tuple(members),
        tracks=tuple(tracks),
        networks=("203.0.113.0/24",),
        devices=(),
        signals={"threshold_30s": 1.0, "lift": 12.0},
    )


def test_an_artist_sees_only_alerts_touching_their_tracks(world: World) -> None:
    world.svc.store.save_alerts(
        [
            _alert("fa_ada", ["b1", "b2"], [world.ada_tracks[0]], T0, 2),
            _alert("fa_bo", ["b3"], [world.bo_tracks[1]], T0, 2),
            _alert("fa_both", ["b4"], [world.ada_tracks[1], world.bo_tracks[0]], T0, 2),
        ]
    )
    seen = {}
    for who in ("admin", "ada", "bo"):
        response = world.client.get("/v1/fraud/alerts", headers=world.keys[who])
        assert response.status_code == 200, response.text
        seen[who] = response.json()["alerts"]
    assert {a["id"] for a in seen["admin"]} == {"fa_ada", "fa_bo", "fa_both"}
    assert {a["id"] for a in seen["ada"]} == {"fa_ada", "fa_both"}
    assert {a["id"] for a in seen["bo"]} == {"fa_bo", "fa_both"}
    for who, own in (("ada", world.ada_tracks), ("bo", world.bo_tracks)):
        assert all(set(a["tracks"]) & set(own) for a in seen[who])
    assert seen["ada"][0]["signals"]["threshold_30s"] == 1.0
    assert world.client.get("/v1/fraud/alerts").status_code == 401


def test_an_alert_on_two_artists_shows_each_only_their_own_tracks_and_no_accounts(world: World) -> None:
    bots = ["bot-ada-and-bo-1", "bot-ada-and-bo-2"]
    world.svc.store.save_alerts([_alert("fa_both", bots, [world.ada_tracks[1], world.bo_tracks[0]], T0, 2)])
    for who, own, other in (("ada", world.ada_tracks[1], world.bo_tracks[0]),
                            ("bo", world.bo_tracks[0], world.ada_tracks[1])):  # fmt: skip
        response = world.client.get("/v1/fraud/alerts", headers=world.keys[who])
        (alert,) = response.json()["alerts"]
        assert alert["tracks"] == [own] and alert["other_tracks"] == 1
        assert alert["accounts"] == 2 and alert["networks"] == 1 and alert["devices"] == 0
        assert other not in response.text and "203.0.113" not in response.text
        assert not any(bot in response.text for bot in bots)
    full = world.client.get("/v1/fraud/alerts", headers=world.keys["admin"]).json()["alerts"][0]
    assert full["members"] == bots and set(full["tracks"]) == {world.ada_tracks[1], world.bo_tracks[0]}


def _plays(world: World) -> list[PlayEvent]:
    plays = []
    for u in range(20):  # organic listeners, whole plays of both artists
        for k, track in enumerate(world.ada_tracks + world.bo_tracks):
            plays.append(PlayEvent(f"fan{u}", track, T0 + timedelta(minutes=u * 7 + k * 4), 180_000))
    for b in range(10):  # bots loop Bo's first track past 30 s during the attack hour
        for k in range(6):
            plays.append(PlayEvent(f"bot{b}", world.bo_tracks[0], T0 + timedelta(minutes=b + k), 31_000))
    return plays


def test_flagged_plays_are_left_out_of_training_and_artist_counts(world: World) -> None:
    world.svc.store.add_plays(_plays(world))
    before = world.svc.recommend.train(actor="admin:test")
    assert before.plays == 20 * 4 + 60
    world.svc.store.save_alerts([_alert("fa_x", [f"bot{b}" for b in range(10)], [world.bo_tracks[0]], T0, 1)])
    after = world.svc.recommend.train(actor="admin:test")
    assert after.plays == 20 * 4
    counts = world.client.get("/v1/me/play-counts", headers=world.keys["bo"]).json()["counts"]
    assert counts == {world.bo_tracks[0]: 20, world.bo_tracks[1]: 20}


def test_pushing_events_reports_bad_rows_and_passes_the_gate(world: World) -> None:
    rows: list[dict[str, object]] = [
        {"user_id": "u1", "track_id": world.ada_tracks[0], "played_at": "2026-10-01T10:00:00Z", "ms_played": 1000},
        {"user_id": "u1", "track_id": world.ada_tracks[0], "played_at": "yesterday", "ms_played": 1000},
        {"user_id": "u2", "track_id": "trk_unknown", "played_at": "2026-10-01T10:00:00Z", "ms_played": 1000},
    ]
    before = world.svc.ledger.size
    response = world.client.post("/v1/fraud/events", json={"plays": rows}, headers=world.keys["service"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["index"] for r in body["rejected"]] == [1]
    assert body["intake"]["accepted"] == 1  # the unknown track is refused by the gate, not fed
    assert world.svc.ledger.size > before  # the detect-fraud use was logged
    assert world.client.post("/v1/fraud/events", json={"plays": rows}, headers=world.keys["ada"]).status_code == 403
