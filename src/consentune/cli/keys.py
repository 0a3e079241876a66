"""``consentune keys create|list|revoke``."""

from __future__ import annotations

from typing import Annotated

import typer

from consentune.cli.common import console, new_table, service
from consentune.errors import InvalidInput
from consentune.types import ArtistId, Role

keys_app = typer.Typer(help="API keys (stored hashed; a secret is shown once).")


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option(help="admin, artist or service")],
    artist: Annotated[str | None, typer.Option(help="artist id or name (artist keys)")] = None,
    label: str = "",
) -> None:
    """Create an API key and print its secret once."""
    try:
        parsed = Role(role)
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}", hint="use admin, artist or service") from None
    svc = service()
    artist_id = ArtistId(svc.catalog.artist(artist).id) if artist else None
    record, secret = svc.keys.create(role=parsed, artist_id=artist_id, label=label)
    console.print(f"key {record.id} ({parsed.value}); secret, shown once:")
    print(secret)


@keys_app.command("list")
def list_() -> None:
    table = new_table("id", "role", "artist", "label", "revoked")
    for k in service().keys.list():
        table.add_row(k.id, k.role.value, k.artist_id or "-", k.label, "yes" if k.revoked_at else "")
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: str) -> None:
    service().keys.revoke(key_id)
    console.print(f"revoked {key_id}")
