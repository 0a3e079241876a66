"""``consentune shield status|blocks|unblock``."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from consentune.cli.common import ADMIN_ACTOR, console, new_table, print_json, service

shield_app = typer.Typer(help="The scraping shield: status, challenge/block log, lifting blocks.")


@shield_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Active blocks, logged challenges and detector state."""
    info = service().listen.guard.status()
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        console.print(f"{key}: {value}")


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
    table = new_table("id", "action", "subject", "score", "why", "lifted")
    for r in records:
        why = "; ".join(str(s.get("explanation", "")) for s in r.signals)
        table.add_row(str(r.id), r.action, r.subject, f"{r.score:.2f}", why, r.lifted_by or "")
    console.print(table)


@shield_app.command("unblock")
def unblock(record_id: int) -> None:
    """Lift a block (recorded with who lifted it)."""
    service().listen.guard.lift(record_id, by=ADMIN_ACTOR, now=time.time())
    console.print(f"lifted block {record_id}")


def _record(r: object) -> dict[str, object]:
    fields = ("id", "at", "subject", "action", "score", "signals", "lifted_at", "lifted_by")
    return {f: getattr(r, f) for f in fields}
