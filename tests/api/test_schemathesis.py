"""schemathesis against the in-process ASGI app, as every role, on SQLite and PostgreSQL.

Checks: every built-in check that applies (see ``CHECKS``): no 5xx; statuses, content types, headers and
bodies as declared; schema-valid requests accepted and invalid ones rejected; a missing required header
or an undeclared method refused; an operation that requires a key refusing none or a bad one.  Each
operation gets a few generated positive and negative examples plus a slice of schemathesis' coverage
phase (boundaries, missing parts, undeclared methods): ``CONSENTUNE_SCHEMATHESIS_EXAMPLES`` and
``CONSENTUNE_SCHEMATHESIS_COVERAGE_CASES`` raise the depth.  A second test spends more examples on the
routes that change consent, count plays or decide gate batches, aims half of them at a real artist and
track, and then checks the ledger audit and the play rollups (``CONSENTUNE_SCHEMATHESIS_DEEP_EXAMPLES``).
The stateful run along the OpenAPI links is in test_schemathesis_stateful.py.
"""

from __future__ import annotations

import io
import itertools
import os
import wave
from collections.abc import Callable
from typing import Any

import numpy as np
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import GenerationConfig, SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)
from sqlalchemy import text

from tests.api.conftest import World

EXAMPLES = int(os.environ.get("CONSENTUNE_SCHEMATHESIS_EXAMPLES", "3"))
COVERAGE_CASES = int(os.environ.get("CONSENTUNE_SCHEMATHESIS_COVERAGE_CASES", "12"))
# Every built-in check that can apply to this API.  Left out: max_response_time (timing is for benches, not
# tests), allow_header_conformance (answers OPTIONS, which no route declares; unsupported_method covers the
# 405s), object_level_authorization (needs one identity's objects fetched by another through schemathesis' auth
# config; tests/api/test_authz_matrix-style checks do this by hand for every route).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    missing_required_header,
    unsupported_method,
    ignored_auth,
    use_after_free,
    ensure_resource_availability,
]
ROLES = ("admin", "artist", "service", "anonymous")
_CREDENTIALS = ("authorization", "x-api-key", "x-csrf-token")


# Rejections of schema-valid requests that depend on what JSON Schema cannot state: the bytes of an upload
# (it must decode as audio), who calls (an admin's upload names the artist, an artist's may not), one field
# against another (valid_until after valid_from), server state (the ledger's current size; a listener session
# cookie from POST /v1/listen/sessions), or the platform's configuration (e-mail verification off).  Only
# positive_data_acceptance gets these statuses, only on these operations; every other check stays as is.
_ACCEPTS_ONLY_WITH = {
    ("POST", "/v1/tracks"): ("upload must decode as audio; who names the artist depends on the role", [400, 422]),
    ("POST", "/v1/identify"): ("upload must decode as audio", [422]),
    ("POST", "/v1/identify/mix"): ("upload must decode as audio", [422]),
    ("PUT", "/v1/artists/{artist_id}/consent"): ("valid_until after valid_from", [400]),
    ("PUT", "/v1/me/consent"): ("valid_until after valid_from", [400]),
    ("GET", "/v1/ledger/proof/consistency"): ("old <= new <= the ledger's current size", [400]),
    ("POST", "/v1/listen/tracks/{track_id}/play"): ("needs a listener session cookie", [400]),
    ("POST", "/v1/listen/progress"): ("needs a listener session cookie", [400]),
    ("POST", "/v1/listen/challenge"): ("needs a listener session cookie", [400]),
    ("GET", "/stream/{token}"): ("needs a listener session cookie", [400]),
    ("GET", "/v1/listen/accounts/verify/email"): ("e-mail verification is configured off", [400]),
}
_DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]  # schemathesis' own default


def load_schema(app: Any) -> Any:
    """The live OpenAPI with the exceptions above set on positive_data_acceptance (and nothing else)."""
    operations = [
        {
            "include-method": method,
            "include-path": path,
            "checks": {"positive_data_acceptance": {"expected-statuses": [*_DEFAULT_ACCEPTED, *map(str, extra)]}},
        }
        for (method, path), (_why, extra) in _ACCEPTS_ONLY_WITH.items()
    ]
    config = SchemathesisConfig.from_dict({"operations": operations})
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


def _role_headers(world: World, role: str) -> dict[str, str]:
    return {"admin": world.admin, "artist": world.ada_key, "service": world.service, "anonymous": {}}[role]


def _run(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    failures: list[str],
    role: str,
    *,
    examples: int = EXAMPLES,
    prepare: Callable[[Any, int], None] | None = None,
) -> None:
    counter = itertools.count()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        # the role decides the credentials; generated ones would only test "unknown key" again and again
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in _CREDENTIALS}
        if prepare is not None:
            prepare(case, next(counter))
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except requests.exceptions.InvalidHeader:
            reject()  # the generator made a header no HTTP client can send (e.g. with CR)
        except (AssertionError, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label} as {role} [{mode.value}]: {str(exc).strip()[:600]}")

    check()


def _coverage_cases(operation: Any, limit: int) -> list[Any]:
    """schemathesis' coverage phase for one operation (boundary values, missing required parts, undeclared
    methods), cut to ``limit`` cases spread over the scenarios so each kind is tried."""
    config = GenerationConfig(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True)
    cases = list(
        operation.schema.iter_coverage_cases(operation, generation_modes=config.modes, generation_config=config)
    )
    by_scenario: dict[str, list[Any]] = {}
    for case in cases:
        by_scenario.setdefault(str(getattr(case.meta.phase.data, "scenario", "")), []).append(case)
    picked = [c for group in itertools.zip_longest(*by_scenario.values()) for c in group if c is not None]
    return picked[:limit]


def _run_coverage(operation: Any, headers: dict[str, str], failures: list[str], role: str) -> None:
    for case in _coverage_cases(operation, COVERAGE_CASES):
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in _CREDENTIALS}
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except requests.exceptions.InvalidHeader:
            continue
        except (AssertionError, BaseExceptionGroup) as exc:
            scenario = getattr(case.meta.phase.data, "scenario", "?")
            failures.append(f"{operation.label} as {role} [coverage {scenario}]: {str(exc).strip()[:600]}")


def _can_be_wrong(operation: Any) -> bool:
    """Has a body or query to get wrong (any string is a valid path segment or header)."""
    definition = operation.definition.raw
    query = [p for p in definition.get("parameters", []) if p.get("in") == "query"]
    return bool(query or "requestBody" in definition)


def test_every_operation_conforms_to_the_published_schema_for_every_role(world: World) -> None:
    schema = load_schema(world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    try:
        for role in ROLES:
            headers = _role_headers(world, role)
            for operation in operations:
                _run(operation, GenerationMode.POSITIVE, headers, failures, role)
                if _can_be_wrong(operation):
                    _run(operation, GenerationMode.NEGATIVE, headers, failures, role)
                _run_coverage(operation, headers, failures, role)
    finally:
        asgi.shutdown_lifespans()
    _report(failures)


# -- a deeper pass where consent and plays are written -----------------------------------------------------------
DEEP_EXAMPLES = int(os.environ.get("CONSENTUNE_SCHEMATHESIS_DEEP_EXAMPLES", "10"))
_DEEP_PATHS = ("/consent", "/terms", "/plays", "/gate/decisions")


def _aim_at_real_ids(case: Any, world: World, track: str, coin: int) -> None:
    """Half the cases name the real artist and track, so they reach the code behind the 404s."""
    if coin % 2:
        return
    params = case.path_parameters or {}
    if "artist_id" in params:
        params["artist_id"] = world.ada.id
    if "track_id" in params:
        params["track_id"] = track
    body = case.body
    if isinstance(body, dict):
        if isinstance(body.get("plays"), list):  # free-form rows: add a valid one beside the generated ones
            when = f"2026-11-{1 + coin % 28:02d}T10:00:00Z"
            body["plays"].append({"user_id": f"u{coin}", "track_id": track, "played_at": when, "ms_played": coin})
        if isinstance(body.get("tracks"), list):
            body["tracks"] = [track, *body["tracks"]]


def test_consent_plays_and_gate_routes_conform_deeper_and_keep_the_ledger_and_rollups_consistent(
    world: World,
) -> None:
    """More examples on the routes that change consent or count plays, aimed at real ids half the time;
    afterwards the ledger audits clean and every stored play is counted once in the rollups."""
    track = world.svc.catalog.ingest(
        _tone_wav(), filename="t.wav", artist=world.ada, title=None, actor="admin:test"
    ).track.id
    schema = load_schema(world.client.app)
    operations = [op for op in (r.ok() for r in schema.get_all_operations()) if any(p in op.path for p in _DEEP_PATHS)]
    assert len(operations) >= 8, [op.label for op in operations]
    failures: list[str] = []
    try:
        for role in ("admin", "artist", "service"):
            headers = _role_headers(world, role)
            for operation in operations:
                modes = [GenerationMode.POSITIVE] + [GenerationMode.NEGATIVE] * _can_be_wrong(operation)
                for mode in modes:
                    _run(
                        operation, mode, headers, failures, role, examples=DEEP_EXAMPLES,
                        prepare=lambda case, coin: _aim_at_real_ids(case, world, track, coin),
                    )  # fmt: skip
    finally:
        asgi.shutdown_lifespans()
    _report(failures)
    svc = world.svc
    svc.ledger.integrate()
    assert svc.ledger.audit().ok
    with svc.store.engine.connect() as conn:
        plays = conn.execute(text("SELECT count(*) FROM plays")).scalar()
        rolled = conn.execute(text("SELECT coalesce(sum(plays), 0) FROM track_daily")).scalar()
    assert plays == rolled, "a play counted twice or not at all"
    assert plays, "no generated batch reached the play store: the aiming at real ids is broken"


def _tone_wav() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        tone = (np.sin(np.arange(32_000) * 0.05) * 8000).astype(np.int16)
        w.writeframes(tone.tobytes())
    return out.getvalue()


def _report(failures: list[str]) -> None:
    out = os.environ.get("CONSENTUNE_SCHEMATHESIS_REPORT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write("\n\n".join(failures) + "\n")
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures[:20])
