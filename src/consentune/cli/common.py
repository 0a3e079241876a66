"""Shared CLI helpers: open the service once per command, print JSON or tables.

Every CLI module is imported to build the command tree, even for ``--help``:
they import only typer, rich and light consentune modules at the top, and the
service (numpy, scipy, SQLAlchemy, ...) inside the commands that use it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from consentune.errors import ConsentuneError, InvalidInput

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from consentune.plays import RowError
    from consentune.service import Consentune

ADMIN_ACTOR = "admin:cli"
T = TypeVar("T")


class SomeFilesFailed(ConsentuneError):
    """A batch finished with failed files (each already reported); exits like the first failure."""

    def __init__(self, message: str, *, hint: str, exit_code: int) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


def error_line(message: str, hint: str) -> str:
    """The one shape of every CLI error: ``error: … (hint: …)`` on one line."""
    line = f"error: {' '.join(message.split())}"
    return f"{line} (hint: {' '.join(hint.split())})" if hint else line


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


def print_table(
    columns: Sequence[str], rows: Iterable[Sequence[str]], *, title: str | None = None, whole: Collection[str] = ("id",)
) -> None:
    """A table whose ``whole`` columns (ids people copy into the next command) are never cut or wrapped."""
    table = new_table(*columns, title=title)
    rows = list(rows)
    for index, column in enumerate(table.columns):
        if columns[index] in whole:
            column.no_wrap = True
            column.min_width = max((len(row[index]) for row in rows), default=0)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def for_each_file(
    paths: Sequence[Path], step: Callable[[Path, bytes], T]
) -> tuple[list[T], list[tuple[Path, ConsentuneError]]]:
    """Run ``step`` on each file's bytes; a failing file is reported on stderr and the others still run.

    A single file's error is raised as is.  Call :func:`raise_if_failed` after
    printing the results.
    """
    done: list[T] = []
    failed: list[tuple[Path, ConsentuneError]] = []
    for path in paths:
        try:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise InvalidInput(f"cannot read {path}: {exc.strerror}", hint="check the path") from None
            done.append(step(path, data))
        except ConsentuneError as exc:
            if len(paths) == 1:
                raise
            where = "" if path.name in exc.message else f"{path}: "  # most messages name the file already
            print(error_line(f"{where}{exc.message}", exc.hint), file=sys.stderr)
            failed.append((path, exc))
    return done, failed


def raise_if_failed(paths: Sequence[Path], failed: Sequence[tuple[Path, ConsentuneError]], *, done: str) -> None:
    if not failed:
        return
    from consentune.cli import exit_code_for

    names = ", ".join(p.name for p, _ in failed[:5]) + (", ..." if len(failed) > 5 else "")
    raise SomeFilesFailed(
        f"{len(failed)} of {len(paths)} files failed: {names}",
        hint=f"each failure is listed above; the other files were {done}",
        exit_code=exit_code_for(failed[0][1]),
    )


def failure_json(path: Path, exc: ConsentuneError) -> dict[str, object]:
    return {"file": str(path), "error": {"code": exc.code, "message": exc.message, "hint": exc.hint}}


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
