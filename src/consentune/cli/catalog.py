"""``consentune ingest``, ``artist``, ``tracks``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consentune.cli.common import (
    ADMIN_ACTOR,
    console,
    failure_json,
    for_each_file,
    print_json,
    print_table,
    raise_if_failed,
    service,
)
from consentune.errors import InvalidInput

artist_app = typer.Typer(help="Manage artists.")


def ingest(
    files: Annotated[list[Path], typer.Argument(help="audio files: WAV, FLAC, OGG Vorbis, Opus, MP3")],
    artist: Annotated[str, typer.Option(help="artist id or name")],
    title: Annotated[str | None, typer.Option(help="title (one file only); default: file name")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="a tag (repeatable), e.g. --tag ambient")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ingest audio files for an artist (identical bytes are idempotent); a bad file is reported, the rest stored."""
    if title and len(files) > 1:
        raise InvalidInput("--title applies to one file", hint="ingest files one by one to title them")
    svc = service()
    owner = svc.catalog.artist(artist)

    def store(path: Path, data: bytes) -> dict[str, object]:
        result = svc.catalog.ingest(
            data, filename=path.name, artist=owner, title=title, actor=ADMIN_ACTOR, tags=tag or ()
        )
        t = result.track
        if not as_json:
            state = "added" if result.created else "already present"
            console.print(f"{t.id}  {t.title!r}  {t.format} {t.duration_s:.1f}s  {state}", markup=False)
        return {
            "file": str(path),
            "track": t.id,
            "title": t.title,
            "created": result.created,
            "format": t.format,
            "duration_s": t.duration_s,
            "sha256": t.content_sha256,
        }

    stored, failed = for_each_file(files, store)
    if as_json:
        print_json([*stored, *(failure_json(path, exc) for path, exc in failed)])
    raise_if_failed(files, failed, done="stored")


@artist_app.command("add")
def artist_add(name: str) -> None:
    """Create an artist (on the current terms)."""
    a = service().catalog.add_artist(name, actor=ADMIN_ACTOR)
    console.print(f"{a.id}  {a.name}  terms v{a.terms_version}")


@artist_app.command("list")
def artist_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List artists."""
    artists = service().catalog.artists()
    if as_json:
        print_json([{"id": a.id, "name": a.name, "terms_version": a.terms_version} for a in artists])
        return
    print_table(("id", "name", "terms"), [(a.id, a.name, f"v{a.terms_version}") for a in artists])


def tracks(
    artist: Annotated[str | None, typer.Option(help="only this artist (id or name)")] = None,
    limit: int = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List tracks."""
    svc = service()
    owner = svc.catalog.artist(artist) if artist else None
    found = svc.catalog.tracks(artist=owner, limit=limit)
    if as_json:
        print_json(
            [
                {
                    "id": t.id,
                    "artist_id": t.artist_id,
                    "title": t.title,
                    "format": t.format,
                    "duration_s": t.duration_s,
                }
                for t in found
            ]
        )
        return
    names = {a.id: a.name for a in svc.catalog.artists()}
    rows = [(t.id, names.get(t.artist_id, t.artist_id), t.title, t.format, f"{t.duration_s:.1f}") for t in found]
    print_table(("id", "artist", "title", "format", "seconds"), rows)
