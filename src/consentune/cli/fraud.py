"""``consentune fraud scan|watch|alerts`` and ``consentune simulate plays``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from consentune.cli.common import (
    ADMIN_ACTOR,
    console,
    print_json,
    print_rejected_rows,
    refuse_if_nothing_accepted,
    service,
)
from consentune.errors import InvalidInput

fraud_app = typer.Typer(help="Fraud detection: artificial streaming and bot farms.")
simulate_app = typer.Typer(help="Synthetic data with ground truth.")


def _print_alerts(alerts: list[dict[str, object]]) -> None:
    for alert in alerts:
        signals = alert["signals"]
        assert isinstance(signals, dict)
        fired = ", ".join(f"{k}={v:g}" for k, v in signals.items() if v)
        members, tracks = alert["members"], alert["tracks"]
        assert isinstance(members, list) and isinstance(tracks, list)
        console.print(
            f"[bold]{alert['id']}[/] score {alert['score']}: {len(members)} accounts, {len(tracks)} tracks, "
            f"window {alert['window_start']:.0f}..{alert['window_end']:.0f}; {fired}"
        )


@fraud_app.command("scan")
def scan(
    plays: Annotated[
        Path | None, typer.Option(help="CSV/Parquet in the play-event schema; omit to scan stored plays")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Batch scan: flagged accounts, flagged tracks, and each alert's block, score and evidence."""
    from consentune.fraud.service import ScanReport, scan_events
    from consentune.plays import read_play_file

    if plays is None:
        report = service().fraud.scan_stored(actor=ADMIN_ACTOR)
    else:
        parsed = read_play_file(plays)
        alerts, stats = scan_events(parsed.events)
        report = ScanReport(alerts, stats, tuple(parsed.errors))
    out = report.to_dict()
    if as_json:
        print_json(out)
    else:
        print_rejected_rows(report.errors)
        _print_alerts(out["alerts"])  # type: ignore[arg-type]
        console.print(
            f"{len(report.alerts)} alerts, {len(out['flagged_accounts'])} flagged accounts, "  # type: ignore[arg-type]
            f"{len(out['flagged_tracks'])} flagged tracks; intake {report.stats.as_dict()}"  # type: ignore[arg-type]
        )
    if plays is not None:
        refuse_if_nothing_accepted(plays, report.errors, accepted=len(parsed.events))
        if not parsed.events:  # a header and nothing else: an empty scan is not a clean bill of health
            raise InvalidInput(f"{plays.name}: no plays to scan", hint="the file has a header but no rows")


@fraud_app.command("watch")
def watch(
    plays: Annotated[Path, typer.Option(help="CSV/Parquet replayed in time order as a stream")],
    batch: Annotated[int, typer.Option(min=1, help="events per micro-batch")] = 10_000,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON alert per line as raised")] = False,
) -> None:
    """Streaming: feed events in micro-batches and print each alert the moment it is raised or updated."""
    from consentune.fraud import StreamDetector
    from consentune.plays import read_play_file

    parsed = read_play_file(plays)
    refuse_if_nothing_accepted(plays, parsed.errors, accepted=len(parsed.events))
    detector = StreamDetector()
    ordered = sorted(parsed.events, key=lambda e: e.played_at)
    for start in range(0, len(ordered), batch):
        # a replay runs the scheduled collusion search as event time passes it (a live service's scheduler does)
        for alert in detector.feed(detector.encoder.encode(ordered[start : start + batch])):
            if as_json:
                print(json.dumps(alert.to_dict(), sort_keys=True))
            else:
                _print_alerts([alert.to_dict()])
    if not as_json:
        console.print(f"done: {len(detector.alerts())} alerts; intake {detector.stats.as_dict()}")


@fraud_app.command("alerts")
def alerts(
    limit: Annotated[int, typer.Option(min=1)] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stored alerts, strongest first."""
    found = [a.to_dict() for a in service().fraud.alerts(limit=limit)]
    if as_json:
        print_json(found)
    else:
        _print_alerts(found)


@simulate_app.command("plays")
def simulate_plays(
    out: Annotated[Path, typer.Option(help="output .csv or .parquet; ground truth goes to OUT.truth.json")],
    users: int = 2000,
    tracks: int = 10_000,
    events: int = 200_000,
    days: float = 7.0,
    bots: int = 200,
    targets: int = 30,
    density: float = 0.5,
    camouflage: Annotated[str, typer.Option(help="none | random | biased | hijacked")] = "none",
    seed: int = 1,
) -> None:
    """Organic listening plus one labelled bot-farm attack, in the shared play-event schema."""
    from consentune.fraud.simulate import START, AttackSpec, inject, merge, organic, write_plays

    if camouflage not in ("none", "random", "biased", "hijacked"):
        raise InvalidInput(f"unknown camouflage {camouflage!r}", hint="use none, random, biased or hijacked")
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InvalidInput(f"{out.name}: unknown output type", hint="name the output .csv or .parquet")
    stream = organic(users=users, tracks=tracks, events=events, days=days, seed=seed)
    spec = AttackSpec(
        bots=bots, targets=targets, density=density, camouflage=camouflage, start=START + days / 2 * 86400
    )
    attack = inject(stream, spec, seed=seed + 1000)
    truth = write_plays(merge(stream, attack), attack, out)
    console.print(f"wrote {out} and {truth}")
