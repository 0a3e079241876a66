"""``consentune plays import FILE``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consentune.cli.common import console, print_json, print_rejected_rows, refuse_if_nothing_accepted, service
from consentune.errors import InvalidInput

plays_app = typer.Typer(help="Play events (listening data).")


@plays_app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="CSV (header row) or Parquet with user_id, track_id, played_at, ms_played")
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    strict: Annotated[bool, typer.Option(help="exit non-zero when any row was rejected")] = False,
) -> None:
    """Import play events: bad rows are reported with line numbers, good rows are kept (one transaction)."""
    if not file.exists():
        raise InvalidInput(f"{file} does not exist", hint="check the path")
    report = service().plays.import_file(file)
    if as_json:
        errors = [{"line": e.line, "error": e.message} for e in report.errors]
        print_json(
            {
                "imported": report.imported,
                "duplicates": report.duplicates,
                "rejected": report.rejected,
                "errors": errors,
            }
        )
    else:
        print_rejected_rows(report.errors)
        if report.rejected > len(report.errors):
            console.print(f"... and {report.rejected - len(report.errors)} more rejected rows")
        already = f" ({report.duplicates} already stored)" if report.duplicates else ""
        console.print(f"imported {report.imported} plays{already}, rejected {report.rejected} rows")
    refuse_if_nothing_accepted(file, report.errors, accepted=report.imported)
    if strict and report.rejected:
        raise InvalidInput(f"{report.rejected} row(s) rejected", hint="fix the listed lines and import them again")
