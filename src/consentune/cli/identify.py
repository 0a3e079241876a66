"""``consentune identify FILE...`` and ``consentune index build|add|remove|stats``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from consentune.cli.common import (
    ADMIN_ACTOR,
    console,
    failure_json,
    for_each_file,
    print_json,
    raise_if_failed,
    service,
)
from consentune.types import TrackId

if TYPE_CHECKING:
    from consentune.identify import IndexReport, Match, MixSegment
    from consentune.service import Consentune

index_app = typer.Typer(help="The content-identification index.")


def identify(
    files: Annotated[list[Path], typer.Argument(help="audio files to identify (not stored)")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    mix: Annotated[bool, typer.Option("--mix", help="each file is a DJ mix or live set: print its tracklist")] = False,
) -> None:
    """Identify audio against the index: matched track, score, time ranges, speed and pitch estimates."""
    svc = service()

    def lookup(path: Path, data: bytes) -> dict[str, object]:
        if mix:
            segments = svc.identify.tracklist(data, filename=path.name, actor=ADMIN_ACTOR)
            if not as_json:
                _print_timeline(svc, path, segments)
            return {"file": str(path), "segments": [dataclasses.asdict(s) for s in segments]}
        found = svc.identify.identify(data, filename=path.name, actor=ADMIN_ACTOR)
        if not as_json:
            _print_matches(svc, path, found)
        return {"file": str(path), "matches": [dataclasses.asdict(m) for m in found]}

    results, failed = for_each_file(files, lookup)
    if as_json:
        print_json([*results, *(failure_json(path, exc) for path, exc in failed)])
    raise_if_failed(files, failed, done="identified")


def _print_matches(svc: Consentune, path: Path, found: Sequence[Match]) -> None:
    if not found:
        console.print(f"{path}: no match", markup=False)
    for m in found:
        title = svc.catalog.track(m.track_id).title
        console.print(
            f"{path}: {m.track_id} {title!r} score {m.score:.1f} ({m.matched} aligned), "
            f"query {m.query_start_s:.1f}-{m.query_end_s:.1f} s = ref {m.ref_start_s:.1f}-{m.ref_end_s:.1f} s, "
            f"time x{m.time_scale:.3f}, pitch {m.pitch_semitones:+.2f} st",
            markup=False,
        )


def _print_timeline(svc: Consentune, path: Path, segments: Sequence[MixSegment]) -> None:
    known = sum(1 for s in segments if s.known)
    console.print(f"{path}: {known} identified segments", markup=False)
    for s in segments:
        when = f"{_clock(s.start_s)}-{_clock(s.end_s)}"
        if s.track_id is None:
            console.print(f"  {when}  unknown", markup=False)
            continue
        track = svc.catalog.track(s.track_id)
        console.print(
            f"  {when}  {s.track_id} {track.title!r}  track {_clock(s.ref_start_s or 0)}-{_clock(s.ref_end_s or 0)}, "
            f"tempo x{s.time_scale or 1:.3f}, pitch {s.pitch_semitones or 0:+.2f} st, "
            f"confidence {s.confidence:.1f}",
            markup=False,
        )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{rest:02d}" if minutes >= 60 else f"{minutes}:{rest:02d}"


def _print_report(report: IndexReport) -> None:
    console.print(
        f"indexed {len(report.indexed)} tracks ({report.audio_s / 3600:.2f} h), "
        f"{len(report.denied)} refused by consent, {len(report.failed)} failed"
    )
    for track, why in report.failed.items():
        console.print(f"  {track}: {why}")


@index_app.command("build")
def build() -> None:
    """(Re)index every catalogue track whose `identify` consent holds."""
    _print_report(service().identify.rebuild(actor=ADMIN_ACTOR))


@index_app.command("add")
def add(tracks: Annotated[list[str], typer.Argument(help="track ids")]) -> None:
    """Index single tracks (only if their `identify` consent holds)."""
    svc = service()
    for track in tracks:
        svc.catalog.track(track)  # an unknown id is NotFound, not a consent refusal
    _print_report(svc.identify.index_tracks([TrackId(t) for t in tracks], actor=ADMIN_ACTOR))


@index_app.command("remove")
def remove(tracks: Annotated[list[str], typer.Argument(help="track ids")]) -> None:
    """Remove single tracks from the index."""
    removed = service().identify.remove_tracks([TrackId(t) for t in tracks], actor=ADMIN_ACTOR)
    console.print(f"removed {removed} tracks")


@index_app.command("stats")
def stats(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Tracks, postings, segments and size of the index."""
    s = service().identify.stats()
    if as_json:
        print_json(dataclasses.asdict(s))
        return
    console.print(
        f"{s.tracks} tracks, {s.postings} hashes, {s.segments} segments, "
        f"{s.tombstones} tombstoned, {s.bytes_on_disk / 1e6:.2f} MB on disk"
    )


def matches(
    track: Annotated[str, typer.Argument(help="track id")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Possible re-uploads found at ingest that involve this track."""
    svc = service()
    svc.catalog.track(track)
    found = svc.identify.matches_for(TrackId(track))
    if as_json:
        print_json([dataclasses.asdict(m) for m in found])
        return
    if not found:
        console.print("no stored matches")
    for m in found:
        console.print(
            f"upload {m.track_id} ~ {m.matched_track_id}: score {m.score:.1f}, "
            f"upload {m.query_start_s:.1f}-{m.query_end_s:.1f} s = ref {m.ref_start_s:.1f}-{m.ref_end_s:.1f} s, "
            f"time x{m.time_scale:.3f}, pitch {m.pitch_semitones:+.2f} st"
        )
