"""``consentune ledger checkpoint|receipt|verify|integrate|audit|public-key``."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Annotated

import typer

from consentune.cli.common import console, print_json, service
from consentune.errors import InvalidInput, VerificationFailed

ledger_app = typer.Typer(help="The verifiable usage ledger.")


@ledger_app.command("checkpoint")
def checkpoint() -> None:
    """Sign (if the log grew) and print the latest checkpoint as a C2SP signed note."""
    print(service().ledger.checkpoint().note, end="")


@ledger_app.command("public-key")
def public_key() -> None:
    """Print the C2SP verifier key for checkpoints."""
    print(service().ledger.verifier_key)


@ledger_app.command("receipt")
def receipt(
    track: Annotated[str, typer.Option(help="track id")],
    purpose: Annotated[str | None, typer.Option(help="only entries for this purpose")] = None,
    out: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    page_size: Annotated[int, typer.Option(help="entries per page")] = 10_000,
) -> None:
    """Write the complete receipt (every page, one per line, one signed checkpoint) for offline checking."""
    pages = service().ledger.receipt_pages(track=track, purpose=purpose, page_size=page_size)
    if out is None:
        for page in pages:
            print(page.decode())
        return
    count = written = 0
    with out.open("wb") as handle:
        for page in pages:
            handle.write(page + b"\n")
            count, written = count + 1, written + len(page) + 1
    console.print(f"wrote {out} ({count} page(s), {written} bytes)")


def _read_key(value: str) -> str:
    path = Path(value)
    if "+" not in value and path.is_file():
        try:
            return path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"cannot read {path}: {exc}", hint="pass the verifier key or a text file with it"
            ) from None
    if "+" in value:
        return value.strip()
    raise InvalidInput(
        f"public key {value!r} is neither a verifier key nor a file",
        hint="pass the output of `consentune ledger public-key`",
    )


@ledger_app.command("verify")
def verify(
    receipt_file: Annotated[Path, typer.Argument(help="receipt JSON")],
    public_key: Annotated[str, typer.Option("--public-key", help="verifier key, or a file holding it")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify a receipt offline: no database, only the receipt and the log's public key."""
    from consentune.ledger import verify_receipt, verify_receipt_pages

    try:
        data = receipt_file.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {receipt_file}: {exc.strerror}", hint="check the path") from None
    lines = data.rstrip(b"\n").split(b"\n")  # one page per line; `ledger receipt` ends each with a newline
    key = _read_key(public_key)
    if len(lines) > 1:
        pages = verify_receipt_pages(lines, verifier_key=key)
        if as_json:
            print_json({"ok": True, "tree_size": pages.checkpoint.size, "pages": pages.pages, "entries": pages.count})
        else:
            console.print(
                f"OK: {pages.count} entries on {pages.pages} pages proven in tree of size {pages.checkpoint.size} "
                f"signed by {pages.checkpoint.origin}"
            )
        return
    verified = verify_receipt(lines[0], verifier_key=key)
    cp = verified.checkpoint
    if as_json:
        print_json(
            {
                "ok": True,
                "tree_size": cp.size,
                "root_hash": base64.b64encode(cp.root_hash).decode(),
                "entries": [e.to_dict() for e in verified.entries],
            }
        )
        return
    # plain print: reasons are data, not rich markup, and this verb stays light (no rich import)
    print(f"OK: {len(verified.entries)} entries proven in tree of size {cp.size} signed by {cp.origin}")
    for e in verified.entries:
        print(f"  #{e.sequence} {e.time} {e.action} {e.purpose or '-'} {e.decision}: {e.reason}")


@ledger_app.command("integrate")
def integrate(
    follow: Annotated[bool, typer.Option("--follow", help="keep integrating every --interval seconds")] = False,
    interval: Annotated[float, typer.Option(help="seconds between rounds with --follow")] = 1.0,
) -> None:
    """Integrate queued appends, sign a checkpoint and publish the tiles (one integrator runs at a time)."""
    ledger = service().ledger
    while True:
        size = ledger.integrate()
        console.print(f"log size {size}")
        if not follow:
            return
        time.sleep(interval)


@ledger_app.command("audit")
def audit(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    full: Annotated[bool, typer.Option("--full", help="recompute the whole log, not just what is new")] = False,
) -> None:
    """Check the log from the last audited checkpoint (or, with --full, from the start); fail on tampering."""
    report = service().ledger.audit(full=full)
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "size": report.size,
                "start": report.start,
                "entries_checked": report.entries_checked,
                "checkpoints_checked": report.checkpoints_checked,
                "nodes_checked": report.nodes_checked,
                "problems": report.problems,
            }
        )
    else:
        for problem in report.problems:
            console.print(f"[red]TAMPER[/red] {problem}")
        console.print(
            f"{report.size} entries (checked from {report.start}), {report.nodes_checked} nodes, "
            f"{report.checkpoints_checked} checkpoints checked"
        )
    if not report.ok:
        raise VerificationFailed(
            f"ledger audit found {len(report.problems)} problem(s)",
            hint="restore from backup; investigate who wrote to the database",
        )
