"""Bounds at the door: sizes, storage ranges, valid text, batch caps, methods; and the published errors."""

from __future__ import annotations

import pytest

from tests.api.conftest import World
from tests.api.test_api import assert_error_shape


def test_trace_and_other_unsupported_methods_answer_405_with_allow(world: World) -> None:
    for method, path in [("TRACE", "/v1/health"), ("TRACE", "/v1/tracks"), ("PATCH", "/v1/artists")]:
        response = world.client.request(method, path, headers=world.admin)
        assert_error_shape(response, 405, "method_not_allowed")
        assert method in response.json()["error"]["message"]
        assert "GET" in response.headers["allow"]


def test_lone_surrogates_in_play_events_are_422_not_500(world: World) -> None:
    row = {"user_id": "u\ud800", "track_id": "trk_x", "played_at": "2026-11-27T10:00:00Z", "ms_played": 1}
    for path in ("/v1/plays", "/v1/fraud/events"):
        body = b'{"plays": [{"user_id": "u\\ud800", "track_id": "t", "played_at": 1, "ms_played": 1}]}'
        response = world.client.post(path, content=body, headers={**world.service, "Content-Type": "application/json"})
        assert_error_shape(response, 422, "invalid_request")
        assert "surrogate" in response.json()["error"]["message"]
    assert row["user_id"].startswith("u")
    bad_name = b'{"name": "Ada\\udc00"}'
    response = world.client.post(
        "/v1/artists", content=bad_name, headers={**world.admin, "Content-Type": "application/json"}
    )
    assert_error_shape(response, 422)


@pytest.mark.parametrize(
    "url",
    ["/v1/tracks?offset=9223372036854775807", "/v1/tracks?offset=2147483648", "/v1/listen/catalog?offset=2147483648"],
)
def test_ints_beyond_the_storage_range_are_refused(world: World, url: str) -> None:
    assert_error_shape(world.client.get(url, headers=world.admin), 422, "invalid_request")


def test_version_beyond_the_storage_range_is_refused(world: World) -> None:
    response = world.client.post("/v1/me/terms/accept", json={"version": 2**63 - 1}, headers=world.ada_key)
    assert_error_shape(response, 422)


def test_consent_dates_must_exist_in_utc(world: World) -> None:
    body = {"purpose": "train-generative", "allow": True, "valid_until": "9999-12-31T23:59:59-14:00"}
    assert_error_shape(world.client.put("/v1/me/consent", json=body, headers=world.ada_key), 422)
    assert world.client.get("/v1/me/consent", headers=world.ada_key).status_code == 200


def test_a_gate_batch_is_capped_and_names_each_track_once(world: World) -> None:
    before = world.svc.ledger.size
    repeated = {"purpose": "identify", "tracks": ["trk_1"] * 100_000}
    response = world.client.post("/v1/gate/decisions", json=repeated, headers=world.service)
    assert_error_shape(response, 422)
    twice = {"purpose": "identify", "tracks": ["trk_1", "trk_2", "trk_1"]}
    response = world.client.post("/v1/gate/decisions", json=twice, headers=world.service)
    assert_error_shape(response, 422)
    assert "more than once" in response.json()["error"]["message"]
    assert world.svc.ledger.size == before  # nothing was logged for refused batches
    ok = world.client.post(
        "/v1/gate/decisions", json={"purpose": "identify", "tracks": ["trk_1"]}, headers=world.service
    )
    assert ok.status_code == 200 and ok.json()["ledger_last"] == ok.json()["ledger_first"]


def test_nul_in_the_url_is_400_before_any_lookup(world: World) -> None:
    for url in ("/v1/tracks/trk%00x", "/v1/tracks?artist=a%00b", "/v1/tracks?artist=%ff%fe"):
        assert_error_shape(world.client.get(url, headers=world.admin), 400, "invalid_input")


def test_oversized_bodies_are_413(world: World) -> None:
    huge = b'{"tags": ["' + b"a" * (17 * 2**20) + b'"]}'
    response = world.client.post(
        "/v1/tags/normalize", content=huge, headers={**world.service, "Content-Type": "application/json"}
    )
    assert_error_shape(response, 413, "payload_too_large")

    def chunks():  # no Content-Length: counted while read
        yield b'{"tags": ["'
        for _ in range(17):
            yield b"a" * 2**20
        yield b'"]}'

    response = world.client.post(
        "/v1/tags/normalize", content=chunks(), headers={**world.service, "Content-Type": "application/json"}
    )
    assert_error_shape(response, 413, "payload_too_large")


def test_long_tags_are_refused_at_the_door(world: World) -> None:
    response = world.client.post("/v1/tags/normalize", json={"tags": ["alternative " * 67]}, headers=world.service)
    assert_error_shape(response, 422)


def test_every_operation_publishes_its_errors_in_one_schema(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            errors = {int(s): r for s, r in operation["responses"].items() if int(s) >= 400}
            assert 503 in errors, (method, path)
            for status, response in errors.items():
                assert response["content"]["application/json"]["schema"] == error, (method, path, status)
            if "requestBody" in operation:
                assert {400, 413, 415, 422} <= set(errors), (method, path)
            if any(p["name"] == "x-api-key" for p in operation.get("parameters", [])):
                assert {401, 403} <= set(errors), (method, path)


def test_a_receipt_is_bounded_per_request(world: World, audio_files: dict[str, bytes]) -> None:
    from consentune.ledger import verify_receipt

    done = world.svc.catalog.ingest(audio_files["flac"], filename="a.flac", artist=world.ada, title="A", actor="t")
    track = done.track.id
    for _ in range(3):
        world.client.post("/v1/gate/decisions", json={"purpose": "identify", "tracks": [track]}, headers=world.service)
    whole = world.client.get(f"/v1/tracks/{track}/receipt", headers=world.admin)
    last = world.client.get(f"/v1/tracks/{track}/receipt?limit=2", headers=world.admin)
    assert len(whole.json()["entries"]) >= 4 and len(last.json()["entries"]) == 2
    assert len(verify_receipt(last.content, verifier_key=world.svc.ledger.verifier_key).entries) == 2
    assert_error_shape(world.client.get(f"/v1/tracks/{track}/receipt?limit=10001", headers=world.admin), 422)
