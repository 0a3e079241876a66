"""schemathesis against the in-process ASGI app, as every role, on SQLite and PostgreSQL.

Checks: no 5xx, every status and content type declared, every body matching its
schema. The budget is small so the test stays well under three minutes on a busy
machine; raise ``CONSENTUNE_SCHEMATHESIS_EXAMPLES`` for a deeper run.  A second
test spends more examples on the routes that change consent, count plays or
decide gate batches, aims half of them at a real artist and track, and then
checks the ledger audit and the play rollups (``CONSENTUNE_SCHEMATHESIS_DEEP_EXAMPLES``).
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
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from tests.api.conftest import World

EXAMPLES = int(os.environ.get("CONSENTUNE_SCHEMATHESIS_EXAMPLES", "3"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ("admin", "artist", "service", "anonymous")
_CREDENTIALS = ("authorization", "x-api-key", "x-csrf-token")


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


def _can_be_wrong(operation: Any) -> bool:
    """Has a body or query to get wrong (any string is a valid path segment or header)."""
    definition = operation.definition.raw
    query = [p for p in definition.get("parameters", []) if p.get("in") == "query"]
    return bool(query or "requestBody" in definition)


def test_every_operation_conforms_to_the_published_schema_for_every_role(world: World) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    failures: list[str] = []
    try:
        for role in ROLES:
            headers = _role_headers(world, role)
            for operation in operations:
                _run(operation, GenerationMode.POSITIVE, headers, failures, role)
                if _can_be_wrong(operation):
                    _run(operation, GenerationMode.NEGATIVE, headers, failures, role)
    finally:
        asgi.shutdown_lifespans()
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures[:20])


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
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
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
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures[:20])
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
