"""``consentune organize analyze|describe|similar|duplicates``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from consentune.cli.common import ADMIN_ACTOR, console, new_table, print_json, service
from consentune.errors import NotFound
from consentune.types import TrackId

if TYPE_CHECKING:
    from consentune.service import Consentune

organize_app = typer.Typer(help="Content organization: descriptors, similar tracks, duplicates.")


@organize_app.command("analyze")
def analyze(
    tracks: Annotated[list[str] | None, typer.Argument(help="track ids (default: every track)")] = None,
    redo: Annotated[bool, typer.Option("--redo", help="re-analyse tracks that already have descriptors")] = False,
) -> None:
    """Describe tracks whose `organize` consent holds (tempo, key, loudness, embedding); others are refused."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    svc = service()
    ids = [TrackId(t) for t in tracks] if tracks else _all_tracks(svc)
    todo = ids if redo or tracks else svc.organize.pending(ids)
    counts = {"analysed": 0, "refused": 0, "failed": 0}
    columns = (TextColumn("[bold]organize"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[last]}"))  # fmt: skip
    with Progress(*columns, console=console.rich, transient=False) as bar:
        task = bar.add_task("analyze", total=len(todo), last="")

        def step(track: TrackId, status: str) -> None:
            counts[status] += 1
            bar.update(task, advance=1, last=f"{track} {status}")

        report = svc.organize.analyze(todo, actor=ADMIN_ACTOR, progress=step)
    console.print(
        f"{len(report.analysed)} analysed, {len(report.refused)} refused by consent, {len(report.failed)} failed, "
        f"{len(ids) - len(todo)} already done ({report.seconds:.1f} s)"
    )
    for track, message in report.failed.items():
        console.print(f"  failed {track}: {message}")


@organize_app.command("describe")
def describe(track: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Stored descriptors of one track."""
    svc = service()
    svc.catalog.track(track)  # an unknown id is NotFound, not a consent refusal
    found = svc.organize.descriptors(TrackId(track), actor=ADMIN_ACTOR)
    if found is None:
        raise NotFound(f"track {track} has no descriptors yet", hint=f"run `consentune organize analyze {track}`")
    if as_json:
        print_json(found.summary())
        return
    table = new_table("descriptor", "value", title=track)
    for key, value in found.summary().items():
        table.add_row(key, str(value))
    console.print(table)


@organize_app.command("similar")
def similar(
    track: str,
    n: Annotated[int, typer.Option("--n", min=1, max=100)] = 10,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The most similar consenting tracks by sound (timbre, harmony, rhythm statistics)."""
    svc = service()
    svc.catalog.track(track)
    found = svc.organize.similar(TrackId(track), n=n, actor=ADMIN_ACTOR)
    if found is None:
        raise NotFound(f"track {track} has no descriptors yet", hint=f"run `consentune organize analyze {track}`")
    if as_json:
        print_json([{"track": f.track, "similarity": f.similarity} for f in found])
        return
    for rank, f in enumerate(found, start=1):
        console.print(f"{rank:2d}. {f.track}  {svc.catalog.track(f.track).title}  ({f.similarity:.3f})")


@organize_app.command("duplicates")
def duplicates(
    track: Annotated[str | None, typer.Argument(help="one track (default: every duplicate group)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Duplicate groups among consenting tracks (exact: same original bytes)."""
    svc = service()
    if track is not None:
        svc.catalog.track(track)
        matches = svc.organize.duplicates(TrackId(track), actor=ADMIN_ACTOR)
        if as_json:
            print_json([{"track": m.track, "kind": m.kind, "score": m.score} for m in matches])
            return
        for m in matches:
            console.print(f"{m.track}  {svc.catalog.track(m.track).title}  ({m.kind}, {m.score:.2f})")
        if not matches:
            console.print("no duplicates found")
        return
    groups = svc.organize.duplicate_group_details(actor=ADMIN_ACTOR)
    if as_json:
        print_json([{"tracks": g.tracks, "kind": g.kind, "score": g.score} for g in groups])
        return
    for number, group in enumerate(groups, start=1):
        members = ", ".join(f"{t} ({svc.catalog.track(t).title})" for t in group.tracks)
        console.print(f"group {number} ({group.kind}, {group.score:.2f}): {members}", markup=False)
    console.print(f"{len(groups)} duplicate groups")


def _all_tracks(svc: Consentune) -> list[TrackId]:
    out: list[TrackId] = []
    while batch := svc.catalog.tracks(limit=1000, offset=len(out)):
        out.extend(t.id for t in batch)
    return out
