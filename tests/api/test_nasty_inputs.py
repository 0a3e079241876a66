"""Hostile values (tests/data/nasty_inputs.json) against every write route, query and path parameter.

Every value goes to every JSON write route (into one of its fields, rotating, so
each field sees every kind of value), to every operation with query
parameters, and (rotating) to the operations with path parameters.
Goal: no 5xx, and every error in the one JSON shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest

from consentune.demo import encode
from tests.api.conftest import World

NASTY_FILE = Path(__file__).resolve().parents[1] / "data" / "nasty_inputs.json"
_MARK = "@@nasty@@"
MAX_URL = 60_000  # httpx refuses longer URLs, and servers cap them lower still


def _raw(entry: dict[str, Any]) -> str:
    """The entry as JSON text (kept raw: some are not valid Python-side JSON, e.g. lone surrogates)."""
    if "value" in entry:
        return json.dumps(entry["value"], allow_nan=True)
    times = entry.get("times", 0)
    if "repeat" in entry:
        return json.dumps(entry["repeat"] * times)
    if "array_of" in entry:
        return "[" + ",".join([json.dumps(entry["array_of"])] * times) + "]"
    if "object_keys" in entry:
        return "{" + ",".join(f'"k{i}":{i}' for i in range(entry["object_keys"])) + "}"
    depth = entry["depth"]
    return ("[" * depth + "]" * depth) if entry["nest"] == "array" else ('{"a":' * depth + "null" + "}" * depth)


def _text(entry: dict[str, Any]) -> str:
    """The entry as a query-string value: strings as they are, everything else as its JSON text."""
    value = entry.get("value")
    if isinstance(value, str):
        return value
    if "repeat" in entry:
        return str(entry["repeat"] * entry["times"])
    return _raw(entry)


NASTY: list[dict[str, Any]] = json.loads(NASTY_FILE.read_text("utf-8"))["values"]
NASTY += json.loads(NASTY_FILE.read_text("utf-8"))["generated"]
RAW = [(entry["name"], _raw(entry), _text(entry)) for entry in NASTY]


def test_the_list_is_long_and_varied() -> None:
    assert len(RAW) >= 150
    names = " ".join(name for name, _, _ in RAW)
    for kind in ("surrogate", "NUL", "RTL", "1 MB", "NaN", "2^64", "passwd", "nested", "9999-12-31", "empty object"):
        assert kind in names, kind


def _play(track: str) -> dict[str, Any]:
    return {
        "user_id": "u1",
        "track_id": track,
        "played_at": "2026-11-27T10:00:00Z",
        "ms_played": 183000,
        "ip": "192.0.2.1",
        "device_id": "d1",
        "user_agent": "ua",
        "country": "DE",
        "account_created_at": "2026-01-01T00:00:00Z",
    }


def _write_routes(w: World, track: str) -> list[tuple[str, str, dict[str, str], dict[str, Any], list[str]]]:
    """(method, path, headers, a valid body, the fields to spoil: dotted paths into the body)."""
    consent = {
        "purpose": "train-generative",
        "allow": True,
        "track_id": track,
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00Z",
    }
    consent_fields = ["purpose", "allow", "track_id", "valid_from", "valid_until", ""]
    play_fields = [f"plays.0.{k}" for k in _play(track)] + ["plays.0", "plays"]
    return [
        ("POST", "/v1/artists", w.admin, {"name": "Cy"}, ["name", ""]),
        ("PUT", f"/v1/tracks/{track}/tags", w.ada_key, {"tags": ["ambient"]}, ["tags", "tags.0"]),
        ("PUT", "/v1/me/consent", w.ada_key, consent, consent_fields),
        ("PUT", f"/v1/artists/{w.ada.id}/consent", w.admin, consent, consent_fields),
        ("POST", "/v1/me/terms/accept", w.ada_key, {"version": 1}, ["version"]),
        (
            "POST",
            "/v1/admin/terms",
            w.admin,
            {"kinds": {"identify": "required"}, "summary": "s"},
            ["kinds", "kinds.identify", "summary"],
        ),
        (
            "POST",
            "/v1/gate/decisions",
            w.service,
            {"purpose": "identify", "tracks": [track], "action": "read-audio"},
            ["purpose", "tracks", "tracks.0", "action"],
        ),
        (
            "POST",
            "/v1/admin/keys",
            w.admin,
            {"role": "artist", "artist_id": w.ada.id, "label": "x"},
            ["role", "artist_id", "label"],
        ),
        ("POST", "/v1/tags/normalize", w.service, {"tags": ["hip hop"]}, ["tags", "tags.0"]),
        ("POST", "/v1/plays", w.service, {"plays": [_play(track)]}, play_fields),
        ("POST", "/v1/fraud/events", w.service, {"plays": [_play(track)]}, play_fields),
        ("POST", "/v1/listen/progress", {}, {"track_id": track, "position_s": 1.0}, ["track_id", "position_s"]),
        ("POST", "/v1/listen/challenge", {}, {"token": "t", "nonce": "n"}, ["token", "nonce"]),
        (
            "POST",
            "/v1/listen/accounts/verify/pow",
            {},
            {"token": "t", "nonces": ["a", "b"]},
            ["token", "nonces", "nonces.0"],
        ),
        ("POST", "/v1/listen/accounts/verify/email/send", {}, {"email": "fan@example.org"}, ["email", ""]),
        ("POST", "/v1/listen/accounts/verify/hook", {}, {"evidence": "e"}, ["evidence", ""]),
        ("POST", "/v1/claims/1/dispute", w.ada_key, {"reason": "mine"}, ["reason", ""]),
        ("POST", "/v1/claims/1/resolve", w.ada_key, {"outcome": "release"}, ["outcome", ""]),
        ("PUT", "/v1/me/claim-policy", w.ada_key, {"policy": "hold"}, ["policy", ""]),
    ]


def _spoiled(body: dict[str, Any], field: str, raw: str) -> str:
    """The body as JSON text with ``field`` (dotted path; "" = the whole body) replaced by ``raw``."""
    if not field:
        return raw
    copy = json.loads(json.dumps(body))
    *parents, last = field.split(".")
    node: Any = copy
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = _MARK
    return json.dumps(copy).replace(json.dumps(_MARK), raw)


def _check(response: Any, what: str, problems: list[str]) -> None:
    if response.status_code >= 500:
        problems.append(f"{what}: {response.status_code} {response.text[:200]}")
        return
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        assert set(response.json()) == {"error"} and error["code"] and error["message"] and error["hint"]
    except (ValueError, KeyError, TypeError, AssertionError):
        problems.append(f"{what}: {response.status_code} not in the error shape: {response.text[:200]}")


@pytest.fixture
def track(world: World) -> str:
    rng = np.random.default_rng(3)
    tone = 0.3 * np.sin(np.arange(44100) * 2 * np.pi * 440 / 44100) + 0.01 * rng.standard_normal(44100)
    data = encode(np.stack([tone, tone], axis=1).astype(np.float32), 44100, format="wav")
    return world.svc.catalog.ingest(data, filename="t.wav", artist=world.ada, title="T", actor="admin:test").track.id


def test_nasty_values_in_every_write_route(world: World, track: str) -> None:
    assert world.client.post("/v1/listen/sessions").status_code == 201  # progress and challenge need a session
    spec = world.client.get("/openapi.json").json()
    routes = _write_routes(world, track)
    json_writes = {
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if "application/json" in op.get("requestBody", {}).get("content", {})
    }
    covered = {
        (
            m,
            p.replace(track, "{track_id}")
            .replace(world.ada.id, "{artist_id}")
            .replace("/claims/1/", "/claims/{claim_id}/"),
        )
        for m, p, *_ in routes
    }
    assert json_writes <= covered, f"add a valid body for {sorted(json_writes - covered)}"
    problems: list[str] = []
    for offset, (method, path, headers, body, fields) in enumerate(routes):
        for i, (name, raw, _) in enumerate(RAW):
            field = fields[(i + offset) % len(fields)]
            content = _spoiled(body, field, raw).encode("utf-8", "surrogatepass")
            response = world.client.request(
                method, path, content=content, headers={**headers, "Content-Type": "application/json"}
            )
            _check(response, f"{method} {path} {field or 'body'}={name}", problems)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(sorted(problems)[:60])


def test_nasty_values_in_every_query_parameter(world: World, track: str) -> None:
    spec = world.client.get("/openapi.json").json()
    problems: list[str] = []
    operations = [
        (method.upper(), path, [p["name"] for p in op.get("parameters", []) if p["in"] == "query"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]
    operations = [(m, p, q) for m, p, q in operations if q]
    assert len(operations) >= 10
    for offset, (method, path, names) in enumerate(operations):
        url = path.replace("{track_id}", track).replace("{user_id}", "u1")
        headers = world.service if method == "GET" and "similar" in path else world.admin
        for i, (name, _, text) in enumerate(RAW):
            param = names[(i + offset) % len(names)]
            query = f"{param}={quote(text.encode('utf-8', 'surrogatepass'), safe='')}"
            if len(query) > MAX_URL:
                continue  # no client sends it: the 1 MB values go in bodies above
            _check(world.client.request(method, f"{url}?{query}", headers=headers), f"{method} {path} {param}={name}",
                   problems)  # fmt: skip
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(sorted(problems)[:60])


def test_nasty_values_in_path_parameters(world: World, track: str) -> None:
    """Each value goes to one operation with path parameters (rotating): they all see a share of every kind."""
    spec = world.client.get("/openapi.json").json()
    operations = [
        (method.upper(), path)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if any(p["in"] == "path" for p in op.get("parameters", []))
    ]
    assert len(operations) >= 15
    problems: list[str] = []
    for i, (name, _, text) in enumerate(RAW):
        method, path = operations[i % len(operations)]
        segment = quote(text.encode("utf-8", "surrogatepass"), safe="")
        if len(segment) > MAX_URL:
            continue
        url = path.replace("{track_id}", track)
        url = (
            url.replace(url[url.index("{") : url.index("}") + 1], segment)
            if "{" in url
            else url.replace(track, segment)
        )
        _check(world.client.request(method, url, headers=world.admin), f"{method} {path} = {name}", problems)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(sorted(problems)[:60])
