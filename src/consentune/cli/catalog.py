"""``consentune ingest``, ``artist``, ``tracks``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consentune.cli.common import ADMIN_ACTOR, console, new_table, print_json, service
from consentune.errors import InvalidInput

artist_app = typer.Typer(help="Manage artists.")


def ingest(
    files: Annotated[list[Path], typer.Argument(help="audio files: WAV, FLAC, OGG Vorbis, Opus, MP3")],
    artist: Annotated[str, typer.Option(help="artist id or name")],
    title: Annotated[str | None, typer.Option(help="title (one file only); default: file name")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="a tag (repeatable), e.g. --tag ambient")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Ingest audio files for an artist (identical bytes are idempotent)."""
    if title and len(files) > 1:
        raise InvalidInput("--title applies to one file", hint="ingest files one by one to title them")
    svc = service()
    owner = svc.catalog.artist(artist)
    results = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}", hint="check the path") from None
        result = svc.catalog.ingest(
            data, filename=path.name, artist=owner, title=title, actor=ADMIN_ACTOR, tags=tag or ()
        )
        t = result.track
        results.append(
            {
                "track": t.id,
                "title": t.title,
                "created": result.created,
                "format": t.format,
                "duration_s": t.duration_s,
                "sha256": t.content_sha256,
            }
        )
        if not as_json:
            state = "added" if result.created else "already present"
            console.print(f"{t.id}  {t.title!r}  {t.format} {t.duration_s:.1f}s  {state}")
    if as_json:
        print_json(results)


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
    table = new_table("id", "name", "terms")
    for a in artists:
        table.add_row(a.id, a.name, f"v{a.terms_version}")
    console.print(table)


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
    table = new_table("id", "artist", "title", "format", "seconds")
    for t in found:
        table.add_row(t.id, t.artist_id, t.title, t.format, f"{t.duration_s:.1f}")
    console.print(table)
