"""``consentune serve`` and ``consentune demo``."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from consentune.cli.common import console, service
from consentune.config import Settings
from consentune.errors import InvalidInput


def check_bench_bind(settings: Settings, host: str) -> None:
    """Bench mode (a client-set clock) is refused on any address but loopback."""
    if not settings.bench_mode:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise InvalidInput(
            f"CONSENTUNE_BENCH_MODE=1 lets clients set the shield's clock; refusing to serve it on {host!r}",
            hint="benchmarks serve on 127.0.0.1; unset CONSENTUNE_BENCH_MODE for anything else",
        )


# uvicorn's own forwarded-header handling stays off: CONSENTUNE_TRUSTED_PROXIES alone decides whom to believe,
# and the shield must see the real peer (the benchmark clock is honoured from loopback peers only).


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default CONSENTUNE_HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default CONSENTUNE_PORT or 8000)")] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs)."""
    import uvicorn

    from consentune.api import create_app

    svc = service()
    bind_host, bind_port = host or svc.settings.host, port or svc.settings.port
    check_bench_bind(svc.settings, bind_host)
    console.print(f"Consentune API on http://{bind_host}:{bind_port}/v1  (docs: /docs)")
    console.print(f"Dashboard: http://{bind_host}:{bind_port}/dashboard/sign-in  (sign in with an artist or admin key)")
    uvicorn.run(create_app(svc), host=bind_host, port=bind_port, log_level="warning", proxy_headers=False)


def demo(
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="build the demo catalogue and exit")] = False,
) -> None:
    """Build a demo catalogue of synthesized music with mixed consents, then serve it."""
    import uvicorn

    from consentune.api import create_app
    from consentune.demo.catalog import build_demo

    svc = service()
    check_bench_bind(svc.settings, svc.settings.host)
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
    uvicorn.run(create_app(svc), host=svc.settings.host, port=bind_port, log_level="warning", proxy_headers=False)
