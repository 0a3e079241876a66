"""``consentune shield status|blocks|unblock``."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from consentune.cli.common import ADMIN_ACTOR, console, print_json, print_table, service

if TYPE_CHECKING:
    from consentune.ports import ShieldRecord
    from consentune.service import Consentune

DAY_S = 86_400.0
shield_app = typer.Typer(help="The scraping shield: status, challenge/block log, lifting blocks.")


@shield_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Blocks and challenges as the deployment recorded them in its database (all server processes), and
    the detector's counters of every worker when the shield's state is shared (Redis or the state file)."""
    guard = _shared_state_service().listen.guard
    info = _recorded_status(guard.decisions(limit=1_000_000), now=time.time())
    info["detector"] = guard.detector_counts()
    if as_json:
        print_json(info)
        return
    by_kind = info["active_blocks_by_kind"]
    assert isinstance(by_kind, dict)
    kinds = ", ".join(f"{n} {k}" for k, n in by_kind.items())
    console.print(f"active blocks: {info['active_blocks']} ({kinds})", markup=False)
    console.print(f"blocks in the last 24 h: {info['blocks_last_24h']}; lifted blocks: {info['lifted_blocks']}")
    console.print(f"challenges logged: {info['challenges_logged']} (last 24 h: {info['challenges_last_24h']})")
    latest = info["latest_decision"]
    if isinstance(latest, dict):
        console.print(f"latest decision: {latest['at']} {latest['action']} {latest['subject']}", markup=False)
    counts = info["detector"]
    if isinstance(counts, dict):
        shown = ", ".join(f"{n} {name}" for name, n in counts.items())
        console.print(f"detector, every worker: {shown}", markup=False)
    else:
        console.print("live detector counters are per server process: GET /v1/admin/shield/status with an admin key")


def _shared_state_service() -> Consentune:
    """The service as the server sees the shield's state: `serve --workers N` without Redis shares a state
    file in the home folder, which an `auto` setting here reads too when it is there."""
    from consentune.config import Settings
    from consentune.service import SHIELD_STATE_FILE, open_service

    settings = Settings.from_env()
    if settings.shield_state == "auto" and not settings.redis_url and (settings.home / SHIELD_STATE_FILE).is_file():
        settings = dataclasses.replace(settings, shield_state="file")
    return open_service(settings)


def _recorded_status(records: Sequence[ShieldRecord], *, now: float) -> dict[str, object]:
    blocks = [r for r in records if r.action == "block"]
    active = [r for r in blocks if r.lifted_at is None]
    challenges = [r for r in records if r.action == "challenge"]
    by_kind = dict.fromkeys(("session", "account", "address", "prefix"), 0)
    for r in active:
        kind = r.subject.split(":", 1)[0]
        by_kind[kind] = by_kind.get(kind, 0) + 1
    latest = max(records, key=lambda r: r.at, default=None)
    return {
        "source": "database",
        "active_blocks": len(active),
        "active_blocks_by_kind": by_kind,
        "blocks_last_24h": sum(1 for r in blocks if now - r.at <= DAY_S),
        "lifted_blocks": len(blocks) - len(active),
        "challenges_logged": len(challenges),
        "challenges_last_24h": sum(1 for r in challenges if now - r.at <= DAY_S),
        "latest_decision": None
        if latest is None
        else {"at": _iso(latest.at), "action": latest.action, "subject": latest.subject, "score": latest.score},
    }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@shield_app.command("blocks")
def blocks(
    all_: Annotated[bool, typer.Option("--all", help="include lifted blocks and challenges")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List blocks (and with --all, challenges), each with the signals that explain it."""
    guard = service().listen.guard
    records = guard.decisions(active_only=not all_) if all_ else guard.decisions(action="block", active_only=True)
    if as_json:
        print_json([_record(r) for r in records])
        return
    rows = [
        (str(r.id), r.action, r.subject, f"{r.score:.2f}", "; ".join(str(s.get("explanation", "")) for s in r.signals),
         r.lifted_by or "")
        for r in records
    ]  # fmt: skip
    print_table(("id", "action", "subject", "score", "why", "lifted"), rows, whole=("id", "subject"))


@shield_app.command("unblock")
def unblock(record_id: int) -> None:
    """Lift a block (recorded with who lifted it)."""
    service().listen.guard.lift(record_id, by=ADMIN_ACTOR, now=time.time())
    console.print(f"lifted block {record_id}")


def _record(r: object) -> dict[str, object]:
    fields = ("id", "at", "subject", "action", "score", "signals", "lifted_at", "lifted_by")
    return {f: getattr(r, f) for f in fields}
