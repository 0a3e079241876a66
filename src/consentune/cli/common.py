"""Shared CLI helpers: open the service once per command, print JSON or tables.

Every CLI module is imported to build the command tree, even for ``--help``:
they import only typer, rich and light consentune modules at the top, and the
service (numpy, scipy, SQLAlchemy, ...) inside the commands that use it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consentune.errors import InvalidInput

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from consentune.plays import RowError
    from consentune.service import Consentune

ADMIN_ACTOR = "admin:cli"


class _LazyConsole:
    """rich's console, made on first use: a verb that prints plain lines need not import rich."""

    def __init__(self) -> None:
        self._console: Console | None = None

    @property
    def rich(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(soft_wrap=True)
        return self._console

    def print(self, *objects: Any, **options: Any) -> None:
        self.rich.print(*objects, **options)

    @property
    def width(self) -> int:
        return self.rich.width


console = _LazyConsole()


def new_table(*columns: str, title: str | None = None) -> Table:
    from rich.table import Table

    return Table(*columns, title=title)


def service() -> Consentune:
    from consentune.service import open_service

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
