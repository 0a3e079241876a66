"""Operations endpoints on a real service: liveness, readiness naming the failing part, metrics, request ids."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from consentune.api import create_app
from consentune.config import Settings
from consentune.ops import JsonFormatter
from consentune.service import Consentune, open_service
from consentune.types import Purpose, Role


def _client(svc: Consentune) -> TestClient:
    return TestClient(create_app(svc), raise_server_exceptions=False)


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_health_is_live_and_echoes_a_request_id(sqlite_svc: Consentune) -> None:
    with _client(sqlite_svc) as client:
        given = client.get("/v1/health", headers={"X-Request-Id": "req-42.a:b"})
        fresh = client.get("/v1/health")
        hostile = client.get("/v1/health", headers={"X-Request-Id": "bad id\twith spaces"})
    assert given.status_code == 200 and given.json()["status"] == "ok"
    assert given.headers["x-request-id"] == "req-42.a:b"
    assert len(fresh.headers["x-request-id"]) == 32
    assert hostile.headers["x-request-id"] not in ("bad id\twith spaces", fresh.headers["x-request-id"])


def test_ready_reports_each_part(svc: Consentune) -> None:
    with _client(svc) as client:
        reply = client.get("/v1/ready")
    body = reply.json()
    assert reply.status_code == 200 and body["status"] == "ready" and body["failing"] == []
    assert set(body["parts"]) == {"database", "blob_store"}


@pytest.fixture
def broken_svc(tmp_path: Path) -> Iterator[Consentune]:
    """Blobs configured under a regular file (the folder can never exist) and Redis on a closed port."""
    (tmp_path / "not-a-folder").write_text("x")
    settings = Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        blob_url=str(tmp_path / "not-a-folder" / "blobs"),
        redis_url="redis://127.0.0.1:1/0",
    )
    service = open_service(settings)
    yield service
    service.close()


def test_ready_is_503_naming_the_unreachable_parts(broken_svc: Consentune) -> None:
    with _client(broken_svc) as client:
        reply = client.get("/v1/ready")
        live = client.get("/v1/health")
    body = reply.json()
    assert reply.status_code == 503 and live.status_code == 200
    assert body["failing"] == ["redis", "blob_store"]
    assert body["parts"]["database"]["ok"] is True
    assert "redis" in body["error"]["message"] and "blob_store" in body["error"]["message"]
    assert body["parts"]["redis"]["error"].startswith("StorageError")


def test_metrics_count_requests_by_route_template_and_gate_decisions(
    sqlite_svc: Consentune, audio_files: dict[str, bytes]
) -> None:
    svc = sqlite_svc
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=ada, title="A", actor="t").track
    svc.consent.set(ada, purpose=Purpose("train-ai"), allow=False, actor="artist:ada", track=track.id)
    admin = {"Authorization": f"Bearer {svc.keys.create(role=Role.ADMIN)[1]}"}
    with _client(svc) as client:
        for _ in range(3):
            assert client.get(f"/v1/tracks/{track.id}", headers=admin).status_code == 200
        assert client.get("/v1/tracks/nope", headers=admin).status_code == 404
        svc.gate.request(actor="service:test", purpose=Purpose("recommend"), tracks=[track.id])
        svc.gate.request(actor="service:test", purpose=Purpose("train-ai"), tracks=[track.id, track.id])
        svc.ledger.integrate()  # the size gauge moves when queued appends are integrated
        text = client.get("/metrics").text
    counts = _samples(text, "consentune_http_request_duration_seconds_count")
    ok = (("method", "GET"), ("route", "/v1/tracks/{track_id}"), ("status", "2xx"))
    missing = (("method", "GET"), ("route", "/v1/tracks/{track_id}"), ("status", "4xx"))
    assert counts[ok] == 3 and counts[missing] == 1
    assert not any(dict(k)["route"] == f"/v1/tracks/{track.id}" for k in counts)
    decisions = _samples(text, "consentune_gate_decisions_total")
    assert decisions[(("outcome", "allow"), ("purpose", "recommend"))] == 1
    assert decisions[(("outcome", "deny"), ("purpose", "train-ai"))] == 2
    assert _samples(text, "consentune_ledger_size_entries")[()] == svc.ledger.size
    assert _samples(text, "consentune_ledger_append_duration_seconds_count")[()] >= 2


def test_access_log_is_json_with_the_request_id(sqlite_svc: Consentune) -> None:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("consentune.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        with _client(sqlite_svc) as client:
            client.get("/v1/tracks/x", headers={"X-Request-Id": "trace-7"})
    finally:
        access.removeHandler(handler)
    record = json.loads(lines[-1])
    assert record["request_id"] == "trace-7"
    assert record["route"] == "/v1/tracks/{track_id}" and record["status"] == 401
    assert record["level"] == "info" and record["logger"] == "consentune.access" and record["ms"] >= 0


def test_shield_refusals_are_counted_by_action(tmp_path: Path, audio_files: dict[str, bytes]) -> None:
    svc = open_service(Settings(home=tmp_path / "h", database_url=f"sqlite:///{tmp_path / 'c.db'}",
                                anonymous_audio="full"))  # fmt: skip
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=ada, title="A", actor="t").track
    crawler = {"User-Agent": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2)"}
    try:
        with _client(svc) as client:
            token = client.post("/v1/listen/sessions", headers=crawler).json()["session_token"]
            refused = [
                client.post(
                    f"/v1/listen/tracks/{track.id}/play", headers={**crawler, "X-Session-Token": token}
                ).status_code
                for _ in range(2)
            ]
            text = client.get("/metrics").text
    finally:
        svc.close()
    assert refused == [403, 403]
    assert _samples(text, "consentune_shield_actions_total")[(("action", "block"),)] == 2
