"""HTTP API: auth and roles, artist isolation, uploads, consent, ledger, one error shape."""

from __future__ import annotations

from typing import Any

from consentune.ledger import verify_receipt
from tests.api.conftest import World


def _upload(w: World, headers: dict[str, str], data: bytes, name: str = "song.flac", **form: str) -> Any:
    return w.client.post("/v1/tracks", headers=headers, files={"file": (name, data, "audio/flac")}, data=form)


def assert_error_shape(response: Any, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message", "hint"} <= set(error)
    assert error["message"] and error["hint"]
    if code is not None:
        assert error["code"] == code


def test_openapi_is_published(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    assert spec["info"]["title"] == "Consentune"
    for path in ("/v1/tracks", "/v1/me/consent", "/v1/ledger/checkpoint", "/v1/tracks/{track_id}/receipt"):
        assert path in spec["paths"]


def test_artist_uploads_and_sees_only_own_tracks(world: World, audio_files: dict[str, bytes]) -> None:
    mine = _upload(world, world.ada_key, audio_files["flac"], title="Mine")
    assert mine.status_code == 201, mine.text
    assert mine.json()["created"] is True
    theirs = _upload(world, world.admin, audio_files["mp3"], "x.mp3", artist="Bo").json()["track"]
    listed = world.client.get("/v1/tracks", headers=world.ada_key).json()
    assert [t["title"] for t in listed] == ["Mine"]
    assert_error_shape(world.client.get(f"/v1/tracks/{theirs['id']}", headers=world.ada_key), 404, "not_found")
    assert_error_shape(world.client.get(f"/v1/tracks/{theirs['id']}/receipt", headers=world.ada_key), 404)
    assert_error_shape(world.client.get("/v1/tracks?artist=Bo", headers=world.ada_key), 403, "forbidden")
    again = _upload(world, world.ada_key, audio_files["flac"])
    assert again.json()["created"] is False and again.json()["track"]["id"] == mine.json()["track"]["id"]


def test_artist_cannot_read_or_change_another_artists_consent(world: World) -> None:
    other = f"/v1/artists/{world.bo.id}/consent"
    assert_error_shape(world.client.get(other, headers=world.ada_key), 403, "forbidden")
    body = {"purpose": "train-generative", "allow": True}
    assert_error_shape(world.client.put(other, json=body, headers=world.ada_key), 403, "forbidden")
    bo_view = world.client.get("/v1/me/consent", headers=world.bo_key).json()
    generative = next(p for p in bo_view["purposes"] if p["purpose"] == "train-generative")
    assert generative["artist_rule"] is None and generative["allowed_by_default"] is False
    assert_error_shape(_upload(world, world.ada_key, b"x", artist="Bo"), 403)


def test_consent_change_is_enforced_by_the_gate(world: World, audio_files: dict[str, bytes]) -> None:
    track = _upload(world, world.ada_key, audio_files["wav"], "a.wav").json()["track"]["id"]
    url = f"/v1/tracks/{track}/audio?purpose=train-generative"
    assert_error_shape(world.client.get(url, headers=world.service), 403, "forbidden")
    put = world.client.put("/v1/me/consent", json={"purpose": "train-generative", "allow": True}, headers=world.ada_key)
    assert put.status_code == 200, put.text
    audio = world.client.get(url, headers=world.service)
    assert audio.status_code == 200 and audio.content == audio_files["wav"]
    assert_error_shape(world.client.get(url, headers=world.ada_key), 403)  # artists do not pull content
    decisions = world.client.post(
        "/v1/gate/decisions",
        json={"purpose": "train-ai", "tracks": [track, "trk_unknown"]},
        headers=world.service,
    ).json()
    assert decisions["allowed"] == []
    assert {d["track"] for d in decisions["denied"]} == {track, "trk_unknown"}
    receipt = world.client.get(f"/v1/tracks/{track}/receipt", headers=world.ada_key)
    key = world.client.get("/v1/ledger/public-key").text.strip()
    verified = verify_receipt(receipt.content, verifier_key=key)
    actions = [(e.action, e.purpose, e.decision) for e in verified.entries]
    assert ("read-audio", "train-generative", "deny") in actions
    assert ("read-audio", "train-generative", "allow") in actions
    assert ("consent-set", "train-generative", "record") in actions


def test_required_purpose_cannot_be_switched_off(world: World) -> None:
    r = world.client.put("/v1/me/consent", json={"purpose": "identify", "allow": False}, headers=world.ada_key)
    assert_error_shape(r, 409, "consent_error")


def test_terms_publish_validates_and_requires_admin(world: World) -> None:
    kinds = {
        p["purpose"]: p["kind"] for p in world.client.get("/v1/me/consent", headers=world.ada_key).json()["purposes"]
    }
    bad = dict(kinds, **{"train-generative": "opt-out"})
    assert_error_shape(world.client.post("/v1/admin/terms", json={"kinds": kinds}, headers=world.ada_key), 403)
    assert_error_shape(world.client.post("/v1/admin/terms", json={"kinds": bad}, headers=world.admin), 409)
    ok = world.client.post("/v1/admin/terms", json={"kinds": dict(kinds, recommend="opt-in")}, headers=world.admin)
    assert ok.status_code == 201 and ok.json()["version"] == 2
    # artists stay on the terms they accepted until they accept the new version
    assert world.client.get("/v1/me/consent", headers=world.ada_key).json()["terms_version"] == 1
    accepted = world.client.post("/v1/me/terms/accept", json={"version": 2}, headers=world.ada_key).json()
    recommend = next(p for p in accepted["purposes"] if p["purpose"] == "recommend")
    assert accepted["terms_version"] == 2 and recommend["kind"] == "opt-in"


def test_every_error_has_one_shape(world: World) -> None:
    c = world.client
    cases = [
        (c.get("/v1/tracks"), 401),
        (c.get("/v1/tracks", headers={"Authorization": "Bearer nope"}), 401),
        (c.get("/v1/no-such-route", headers=world.admin), 404),
        (c.delete("/v1/ledger/checkpoint"), 405),
        (c.get("/v1/tracks/trk_missing", headers=world.admin), 404),
        (c.get("/v1/tracks?limit=0", headers=world.admin), 422),
        (c.put("/v1/me/consent", json={"allow": "maybe"}, headers=world.ada_key), 422),
        (c.put("/v1/me/consent", json={"purpose": "x", "allow": True}, headers=world.admin), 403),
        (_upload(world, world.ada_key, b"not audio at all", "notes.txt"), 422),
        (_upload(world, world.ada_key, b"", "empty.wav"), 422),
        (_upload(world, world.ada_key, b"RIFF", "../../etc/passwd"), 400),
        (_upload(world, world.admin, b"RIFF", "a.wav", artist="Nobody"), 404),
        (c.post("/v1/artists", json={"name": "Ada"}, headers=world.admin), 409),
        (c.get("/v1/ledger/proof/consistency?old=5&new=2"), 400),
        (c.get("/v1/ledger/proof/consistency?old=1&new=999999"), 400),
        (c.get("/v1/ledger/proof/consistency?old=0&new=3"), 422),
        (c.get("/v1/ledger/proof/consistency?old=1&new=100000000000000000000000"), 422),
        (c.post("/v1/gate/decisions", json={"purpose": "identify", "tracks": ["t" * 40]}, headers=world.service), 422),
        (
            c.put(
                "/v1/me/consent",
                json={"purpose": "train-ai", "allow": True, "valid_until": "2030-01-01T00:00:00"},
                headers=world.ada_key,
            ),
            422,
        ),
        (c.get("/v1/ledger/audit", headers=world.service), 403),
    ]
    for response, status in cases:
        assert_error_shape(response, status)
    assert cases[8][0].json()["error"]["reason"] == "not_audio"
    assert cases[9][0].json()["error"]["reason"] == "empty"


def test_admin_manages_keys_and_sees_purge_jobs(world: World, audio_files: dict[str, bytes]) -> None:
    created = world.client.post(
        "/v1/admin/keys", json={"role": "artist", "artist_id": world.bo.id}, headers=world.admin
    )
    assert created.status_code == 201
    secret, key_id = created.json()["secret"], created.json()["id"]
    me = world.client.get("/v1/me", headers={"X-API-Key": secret}).json()
    assert me["artist"]["name"] == "Bo"
    assert world.client.delete(f"/v1/admin/keys/{key_id}", headers=world.admin).status_code == 204
    assert_error_shape(world.client.get("/v1/me", headers={"X-API-Key": secret}), 401)
    listed = world.client.get("/v1/admin/keys", headers=world.admin).json()
    assert all("secret" not in k or k["secret"] is None for k in listed)
    world.client.put("/v1/me/consent", json={"purpose": "organize", "allow": False}, headers=world.bo_key)
    jobs = world.client.get("/v1/admin/purge-jobs", headers=world.admin).json()
    assert [(j["purpose"], j["status"]) for j in jobs] == [("organize", "done")]


def test_ledger_audit_and_checkpoint_are_consistent(world: World) -> None:
    first = world.client.get("/v1/ledger/checkpoint").json()
    world.client.post("/v1/artists", json={"name": "Cy"}, headers=world.admin)
    assert world.client.get("/v1/ledger/checkpoint").json()["size"] == first["size"]  # public: at most one per 10 s
    world.svc.ledger.checkpoint()  # the operator (or a timer) signs the new head
    second = world.client.get("/v1/ledger/checkpoint").json()
    assert second["size"] > first["size"]
    proof = world.client.get(f"/v1/ledger/proof/consistency?old={first['size']}&new={second['size']}").json()
    import base64

    from consentune.ledger import verify_consistency

    verify_consistency(
        old_size=first["size"],
        new_size=second["size"],
        old_root=base64.b64decode(first["root_hash"]),
        new_root=base64.b64decode(second["root_hash"]),
        proof=[base64.b64decode(p) for p in proof["proof"]],
    )
    audit = world.client.get("/v1/ledger/audit", headers=world.admin).json()
    assert audit["ok"] is True and audit["size"] == second["size"]


def test_tags_at_upload_and_replaced_by_the_artist_only(world: World, audio_files: dict[str, bytes]) -> None:
    r = _upload(world, world.ada_key, audio_files["flac"], tags=" Ambient, piano ,ambient")
    track = r.json()["track"]
    assert track["tags"] == ["ambient", "piano"]
    put = world.client.put(f"/v1/tracks/{track['id']}/tags", json={"tags": ["Drone"]}, headers=world.ada_key)
    assert put.status_code == 200 and put.json()["tags"] == ["drone"]
    assert world.client.get(f"/v1/tracks/{track['id']}", headers=world.admin).json()["tags"] == ["drone"]
    other = world.client.put(f"/v1/tracks/{track['id']}/tags", json={"tags": ["x"]}, headers=world.bo_key)
    assert_error_shape(other, 404)
    too_long = world.client.put(f"/v1/tracks/{track['id']}/tags", json={"tags": ["x" * 65]}, headers=world.ada_key)
    assert_error_shape(too_long, 400, "invalid_input")


def test_consent_bounds_past_the_calendar_are_refused_and_stored_ones_fail_nobody(
    world: World, audio_files: dict[str, bytes]
) -> None:
    from sqlalchemy import insert

    from consentune.storage import tables

    body = {"purpose": "train-ai", "allow": True, "valid_until": "9999-12-31T23:59:59-14:00"}
    # the request schema refuses it first (422); the registry would too (InvalidInput) for library callers
    assert_error_shape(world.client.put("/v1/me/consent", json=body, headers=world.ada_key), 422, "invalid_request")
    ada_track = _upload(world, world.ada_key, audio_files["wav"], "a.wav").json()["track"]["id"]
    bo_track = _upload(world, world.bo_key, audio_files["flac"], "b.flac").json()["track"]["id"]
    for key in (world.ada_key, world.bo_key):
        put = world.client.put("/v1/me/consent", json={"purpose": "train-ai", "allow": True}, headers=key)
        assert put.status_code == 200, put.text
    with world.svc.store.engine.begin() as conn:  # as stored before bounds were checked
        conn.execute(
            insert(tables.consent_rules).values(
                artist_id=world.ada.id, track_id=None, purpose="train-ai", allow=True, valid_from_us=None,
                valid_until_us=253_402_351_199_000_000, actor="artist:old", created_us=4_000_000_000_000_000,
            )
        )  # fmt: skip
    mine = world.client.get("/v1/me/consent", headers=world.ada_key)
    assert mine.status_code == 200, mine.text
    (train,) = [p for p in mine.json()["purposes"] if p["purpose"] == "train-ai"]
    assert train["artist_rule"]["allow"] is False and "out of range" in train["artist_rule"]["defect"]
    decisions = world.client.post(
        "/v1/gate/decisions", json={"purpose": "train-ai", "tracks": [ada_track, bo_track]}, headers=world.service
    )
    assert decisions.status_code == 200, decisions.text
    assert decisions.json()["allowed"] == [bo_track]
    (denied,) = decisions.json()["denied"]
    assert denied["track"] == ada_track and "unreadable" in denied["reason"]
