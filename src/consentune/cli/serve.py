"""``consentune serve`` and ``consentune demo``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from consentune.cli.common import console, service


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default CONSENTUNE_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default CONSENTUNE_PORT or 8000)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes on this machine (they share one port)")] = 1,
    log_format: Annotated[str, typer.Option(help="json (one object per line, with request ids) or text")] = "json",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Serve the HTTP API (OpenAPI at /docs); /v1/health, /v1/ready and /metrics for operations."""
    import uvicorn

    from consentune.ops import MULTIPROC_ENV, configure_logging, reset_multiprocess_dir

    configure_logging(level=log_level, json_lines=log_format == "json")
    if workers > 1 or os.environ.get(MULTIPROC_ENV):
        # N processes report one picture through a shared sample folder, set before any of them starts
        folder = Path(os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="consentune-metrics-"))
        reset_multiprocess_dir(folder)
        os.environ[MULTIPROC_ENV] = str(folder)
    svc = service()  # migrates and checks the configuration once, before any worker starts
    bind_host, bind_port = host or svc.settings.host, port or svc.settings.port
    console.print(f"Consentune API on http://{bind_host}:{bind_port}/v1  (docs: /docs), {workers} worker(s)")
    console.print(f"Dashboard: http://{bind_host}:{bind_port}/dashboard/sign-in  (sign in with an artist or admin key)")
    common = {"host": bind_host, "port": bind_port, "log_config": None, "access_log": False}
    if workers == 1:
        from consentune.api import create_app

        uvicorn.run(create_app(svc), **common)  # type: ignore[arg-type]
        return
    svc.close()
    from consentune.api.asgi import LOG_FORMAT_ENV, LOG_LEVEL_ENV

    os.environ[LOG_FORMAT_ENV], os.environ[LOG_LEVEL_ENV] = log_format, log_level  # workers are fresh processes
    uvicorn.run("consentune.api.asgi:worker_app", factory=True, workers=workers, **common)  # type: ignore[arg-type]


def demo(
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="build the demo catalogue and exit")] = False,
) -> None:
    """Build a demo catalogue of synthesized music with mixed consents, then serve it."""
    import uvicorn

    from consentune.api import create_app
    from consentune.demo.catalog import build_demo

    svc = service()
    console.print(f"data folder: {svc.settings.home}")
    keys = build_demo(svc, progress=console.print)
    bind_port = port or svc.settings.port
    url = f"http://{svc.settings.host}:{bind_port}"
    console.print()
    console.print(f"[bold]Consentune demo[/bold]: open [bold]{url}/dashboard/sign-in[/bold]")
    console.print("  paste an artist key to see that artist's tracks, consent, usage timeline, receipts and reach;")
    console.print("  paste the admin key for the operator console (terms, ledger audit, purges, shield blocks).")
    console.print(f"admin API key:  {keys.admin}")
    for name, key in keys.artists.items():
        console.print(f"artist key ({name}): {key}")
    console.print(f"JSON API: {url}/v1  (OpenAPI docs: {url}/docs)")
    console.print(f"try:  curl -H 'Authorization: Bearer {keys.admin}' {url}/v1/tracks")
    console.print(f"      curl -H 'Authorization: Bearer {next(iter(keys.artists.values()))}' {url}/v1/me/consent")
    console.print(f"      curl -H 'Authorization: Bearer {keys.admin}' {url}/v1/users/listener-03/recommendations")
    if no_serve:
        return
    uvicorn.run(create_app(svc), host=svc.settings.host, port=bind_port, log_level="warning")
