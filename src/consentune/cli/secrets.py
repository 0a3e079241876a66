"""``consentune secrets init DIR``: the signing key and shared secret every machine mounts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from consentune.cli.common import console
from consentune.config import Settings

secrets_app = typer.Typer(
    help="Shared secrets for a deployment of many machines.",
)


@secrets_app.command("init")
def init(
    folder: Annotated[Path, typer.Argument(help="folder to create them in (then mount it on every machine)")],
) -> None:
    """Create the ledger signing key and the shield/session secret (mode 0600) once; keeps existing ones."""
    from consentune.ledger import load_or_create_signer
    from consentune.service import load_or_create_secret

    settings = Settings.from_env()
    folder = folder.expanduser().absolute()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = load_or_create_signer(folder / settings.key_path.name, settings.log_origin)
    load_or_create_secret(folder / settings.shield_secret_path.name)
    console.print(f"secrets in {folder}; set CONSENTUNE_SECRETS_DIR={folder} on every machine")
    console.print(f"ledger verifier key: {signer.verifier_key()}")
