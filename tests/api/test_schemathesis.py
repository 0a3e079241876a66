"""schemathesis against the in-process ASGI app, as every role, on SQLite and PostgreSQL.

Checks: no 5xx, every status and content type declared, every body matching its
schema. The budget is small so the test stays well under three minutes on a busy
machine; raise ``CONSENTUNE_SCHEMATHESIS_EXAMPLES`` for a deeper run.
"""

from __future__ import annotations

import os
from typing import Any

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

from tests.api.conftest import World

EXAMPLES = int(os.environ.get("CONSENTUNE_SCHEMATHESIS_EXAMPLES", "3"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = ("admin", "artist", "service", "anonymous")
_CREDENTIALS = ("authorization", "x-api-key", "x-csrf-token")


def _role_headers(world: World, role: str) -> dict[str, str]:
    return {"admin": world.admin, "artist": world.ada_key, "service": world.service, "anonymous": {}}[role]


def _run(operation: Any, mode: GenerationMode, headers: dict[str, str], failures: list[str], role: str) -> None:
    @settings(
        max_examples=EXAMPLES,
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
