"""Shared CLI helpers: open the service once per command, print JSON or tables."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from consentune.errors import InvalidInput
from consentune.plays import RowError
from consentune.service import Consentune, open_service

console = Console(soft_wrap=True)
ADMIN_ACTOR = "admin:cli"


def service() -> Consentune:
    return open_service()


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def print_rejected_rows(errors: Sequence[RowError], *, shown: int = 50) -> None:
    for error in errors[:shown]:
        console.print(f"line {error.line}: {error.message}", markup=False, highlight=False)
    if len(errors) > shown:
        console.print(f"... and {len(errors) - shown} more rejected rows")


def refuse_if_nothing_accepted(path: Path, errors: Sequence[RowError], *, accepted: int) -> None:
    """A play file of which no row was usable (wrong header, wrong file) is an error, not an empty result."""
    if errors and accepted == 0:
        first = errors[0]
        raise InvalidInput(
            f"{path.name}: no row accepted ({len(errors)} rejected; line {first.line}: {first.message})",
            hint="a play file has a header row user_id,track_id,played_at,ms_played and one play per line",
        )
