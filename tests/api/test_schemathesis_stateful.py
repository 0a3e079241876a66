"""schemathesis' state machine over the OpenAPI links, as every role, on SQLite and PostgreSQL.

The links (api/openapi.py) chain the main resources: create or list an artist, then read and set its
consent and clear a track's rule; upload or list a track, then read it, its receipt, its audio, its tags;
create a key, then revoke it; list claims, then read, dispute, resolve.  Each step runs every check of the
stateless test, including the stateful ones (use_after_free, ensure_resource_availability).  Afterwards the
ledger audits clean.  Depth: ``CONSENTUNE_SCHEMATHESIS_STATEFUL_EXAMPLES`` scenarios of at most
``CONSENTUNE_SCHEMATHESIS_STATEFUL_STEPS`` calls each, per role.
"""

from __future__ import annotations

import collections
import os
import zlib
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.python import asgi

from consentune.types import ArtistId, Role
from tests.api.conftest import World
from tests.api.test_schemathesis import _CREDENTIALS, CHECKS, ROLES, _report, _tone_wav, load_schema

EXAMPLES = int(os.environ.get("CONSENTUNE_SCHEMATHESIS_STATEFUL_EXAMPLES", "40"))
STEPS = int(os.environ.get("CONSENTUNE_SCHEMATHESIS_STATEFUL_STEPS", "10"))


def _fresh_key(world: World, role: str) -> dict[str, str]:
    """A new key of ``role`` (an admin scenario may list keys and follow the link to revoke its own)."""
    if role == "anonymous":
        return {}
    artist = ArtistId(world.ada.id) if role == "artist" else None
    return {"Authorization": f"Bearer {world.svc.keys.create(role=Role(role), artist_id=artist)[1]}"}


def _machine(
    schema: Any, world: World, role: str, seen: collections.Counter[tuple[str, int]], failures: list[str]
) -> Any:
    base = schema.as_state_machine()

    class RoleMachine(base):  # type: ignore[misc, valid-type]
        """The role decides the credentials (generated ones would only test "unknown key" again and again)."""

        def setup(self) -> None:
            super().setup()
            self.headers = _fresh_key(world, role)

        def before_call(self, case: Any) -> None:
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in _CREDENTIALS}

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": self.headers}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            seen[(case.operation.label, response.status_code)] += 1

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            # Failures are collected, not raised: hypothesis would replay the scenario against a database the
            # first run already changed, see different responses and report flakiness instead of the failure.
            try:
                case.validate_response(response, checks=CHECKS, headers=self.headers, recorder=self.recorder)
            except (AssertionError, BaseExceptionGroup) as exc:
                failures.append(f"{case.operation.label} as {role} [stateful]: {str(exc).strip()[:1500]}")

    return RoleMachine


_ONE_SCENARIO = settings(
    # hypothesis always runs the simplest walk first (every choice at its minimum); when that walk is valid it
    # would be the only one, the same in every scenario whatever the seed. The second example is the seed's.
    max_examples=2,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_linked_operations_conform_as_every_role_and_leave_the_ledger_clean(world: World) -> None:
    world.svc.catalog.ingest(_tone_wav(), filename="t.wav", artist=world.ada, title=None, actor="admin:test")
    schema = load_schema(world.client.app)
    assert schema.statistic.transitions.total >= 20, "the OpenAPI lost its links"
    failures: list[str] = []
    seen: dict[str, collections.Counter[tuple[str, int]]] = {}
    try:
        for role in ROLES:
            seen[role] = collections.Counter()
            machine = _machine(schema, world, role, seen[role], failures)
            for scenario in range(EXAMPLES):
                # One scenario per hypothesis run, each from its own fixed seed: within one run hypothesis
                # would replay prefixes whose enabled links depend on a database earlier scenarios changed.
                machine._hypothesis_internal_use_seed = zlib.crc32(f"{role}/{scenario}".encode())
                run_state_machine_as_test(machine, settings=_ONE_SCENARIO)
    finally:
        asgi.shutdown_lifespans()
    _report(failures)
    # the links were followed to real resources, not only tried with generated ids
    admin = seen["admin"]
    reached = {label for (label, status), _n in admin.items() if 200 <= status < 300}
    assert "GET /v1/artists/{artist_id}/consent" in reached, sorted(reached)
    assert "GET /v1/tracks/{track_id}" in reached, sorted(reached)
    svc = world.svc
    svc.ledger.integrate()
    assert svc.ledger.audit().ok
