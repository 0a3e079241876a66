"""``consentune bench core``: print a table, write JSON."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from consentune.cli.common import console

bench_app = typer.Typer(help="Benchmarks: print a table and write JSON.", no_args_is_help=True)

_UNITS = {"_per_s": "/s", "_ms_median": "ms (median)", "_s": "s"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


@bench_app.command("core")
def core(
    out: Annotated[Path, typer.Option(help="JSON output file")] = Path("bench-results/core.json"),
    entries: Annotated[int, typer.Option(help="ledger size to build")] = 1_000_000,
    decisions: Annotated[int, typer.Option(help="consent decisions per batch")] = 1_000_000,
    database_url: Annotated[str | None, typer.Option(help="benchmark this database instead of a temp SQLite")] = None,
) -> None:
    """Ledger appends/s, proof times at full size, consent decisions/s, ingest throughput."""
    from consentune.bench.core import run_core

    results = run_core(
        ledger_entries=entries,
        decisions=decisions,
        database_url=database_url,
        progress=console.print,
    )
    results["machine"] = {"python": platform.python_version(), "platform": platform.platform()}
    table = Table("measure", "value", title=f"consentune bench core ({results['backend']})")
    for key, value in results.items():
        if key not in ("targets", "meets_targets", "machine"):
            table.add_row(key, _fmt(value))
    for key, target in results["targets"].items():
        ok = results["meets_targets"][key]
        table.add_row(
            f"target {key}",
            f"{target:,} -> {'met' if ok else 'MISSED'} ({results[key] / target:.2f}x)",
        )
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    console.print(f"wrote {out}")
