"""``consentune serve`` and ``consentune demo``.

Both bind their port before doing anything else, so a busy port is one error
line and nothing half-built (no demo keys printed, no data folder created),
then hand the bound socket to uvicorn.  The server says where it listens and
how to stop it, and logs one access line per request.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import os
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from consentune.cli.common import console
from consentune.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from consentune.config import Settings
    from consentune.service import Consentune

# uvicorn's logging, quieter: its start-up chatter only from WARNING on, one access line per request
ACCESS_FORMAT = '%(asctime)s %(client_addr)s "%(request_line)s" %(status_code)s'
LOG_CONFIG: dict[str, object] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"},
        "access": {
            "()": "consentune.cli.access_log.AccessFormatter",
            "fmt": ACCESS_FORMAT,
            "datefmt": "%Y-%m-%dT%H:%M:%S",
        },
    },
    "handlers": {
        "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
    },
    "loggers": {
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}


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


WORKER_TIMEOUT_S = 30.0  # serve --worker-timeout: a worker silent this long counts as hung


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default CONSENTUNE_HOST or 127.0.0.1)")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="port (default CONSENTUNE_PORT or 8000; 0: any free port)")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="one line per request")] = True,
    workers: Annotated[int, typer.Option(min=1, help="worker processes on this machine (one port, a socket each)")] = 1,
    log_format: Annotated[
        str, typer.Option(help="text (readable lines) or json (one object per line, with request ids)")
    ] = "text",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    worker_timeout: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="with --workers: a worker whose event loop has not run for this many seconds is killed and replaced",
        ),
    ] = WORKER_TIMEOUT_S,
) -> None:
    """Serve the HTTP API and the dashboard (OpenAPI at /docs; /v1/health, /v1/ready, /metrics); Ctrl+C stops it."""
    if log_format not in ("text", "json"):
        raise InvalidInput(
            f"log format {log_format[:20]!r} is neither text nor json", hint="use --log-format text|json"
        )
    settings = _settings()
    check_bench_bind(settings, host or settings.host)
    listeners = bind_group(host or settings.host, settings.port if port is None else port, workers)
    from consentune.ops import MULTIPROC_ENV, configure_logging, reset_multiprocess_dir

    if log_format == "json":
        configure_logging(level=log_level, json_lines=True)
    if workers > 1 or os.environ.get(MULTIPROC_ENV):
        # N processes report one picture through a shared sample folder, set before any of them starts
        folder = Path(os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="consentune-metrics-"))
        reset_multiprocess_dir(folder)
        os.environ[MULTIPROC_ENV] = str(folder)
    if workers > 1 and settings.shield_state == "auto" and not settings.redis_url:
        # workers must judge one picture of each listener: without Redis, one state file on this host
        os.environ["CONSENTUNE_SHIELD_STATE"] = "file"
        settings = dataclasses.replace(settings, shield_state="file")
    from consentune.service import open_service

    try:
        svc = open_service(settings)  # migrates and checks the configuration once, before any worker starts
    except BaseException:
        for listener in listeners:
            listener.close()
        raise
    run_server(svc, listeners, access_log=access_log, workers=workers, log_format=log_format, log_level=log_level,
               worker_timeout_s=worker_timeout)  # fmt: skip


def demo(
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="port (default 8000; 0: any free port)")] = None,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="build the demo catalogue and exit")] = False,
) -> None:
    """Build a demo catalogue of synthesized music with mixed consents, then serve it."""
    from consentune.demo.catalog import build_demo
    from consentune.service import open_service

    settings = _settings()
    listener = None if no_serve else bind(settings.host, settings.port if port is None else port)
    try:
        svc = open_service(settings)
        console.print(f"data folder: {settings.home}", markup=False)
        keys = build_demo(svc, progress=console.print)
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    url = _url(settings.host, settings.port if listener is None else listener.getsockname()[1])
    console.print()
    console.print(f"[bold]Consentune demo[/bold]: open [bold]{url}/dashboard/sign-in[/bold]")
    console.print("  paste an artist key to see that artist's tracks, consent, usage timeline, receipts and reach;")
    console.print("  paste the admin key for the operator console (terms, ledger audit, purges, shield blocks).")
    console.print(f"admin API key:  {keys.admin}")
    for name, key in keys.artists.items():
        console.print(f"artist key ({name}): {key}", markup=False)
    console.print(f"JSON API: {url}/v1  (OpenAPI docs: {url}/docs)")
    console.print(f"try:  curl -H 'Authorization: Bearer {keys.admin}' {url}/v1/tracks")
    console.print(f"      curl -H 'Authorization: Bearer {next(iter(keys.artists.values()))}' {url}/v1/me/consent")
    console.print(f"      curl -H 'Authorization: Bearer {keys.admin}' {url}/v1/users/listener-03/recommendations")
    if listener is not None:
        run_server(svc, [listener])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, or one error line saying why not (with what to do instead)."""
    try:
        return _listen(host, port, reuse_port=False)
    except OSError as exc:
        raise _bind_error(host, port, exc) from None


def bind_group(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one port, one per worker (``SO_REUSEPORT``; see :mod:`.supervisor`).

    The port is first taken alone, so a port anything else listens on (another
    Consentune with its own reuse-port group included) is refused exactly as
    by :func:`bind`.  Where ``SO_REUSEPORT`` is missing, one shared socket.
    """
    first = bind(host, port)
    if count == 1 or not hasattr(socket, "SO_REUSEPORT"):
        return [first]
    port = first.getsockname()[1]  # port 0 asked for any free port: the group shares the one it got
    first.close()
    group: list[socket.socket] = []
    try:
        for _ in range(count):
            group.append(_listen(host, port, reuse_port=True))
    except OSError as exc:
        for listener in group:
            listener.close()
        raise _bind_error(host, port, exc) from None
    return group


def _listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio switches Nagle off (TCP_NODELAY) only on connections whose socket says TCP,
    # and with Nagle on, every keep-alive response written in two parts waited ~40 ms for a delayed ACK
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name not in ("nt", "cygwin"):
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # inherited by accepted connections
        listener.bind((host, port))
        listener.listen(2048)
        return listener
    except OSError:
        listener.close()
        raise


def _bind_error(host: str, port: int, exc: OSError) -> Conflict | InvalidInput:
    if exc.errno == errno.EADDRINUSE:
        return Conflict(
            f"port {port} on {host} is already in use",
            hint=f"stop what serves it, e.g. an earlier `consentune demo` or `serve`, or pass --port {port + 1}",
        )
    return InvalidInput(
        f"cannot listen on {host} port {port}: {exc.strerror or exc}",
        hint="use an address of this machine (CONSENTUNE_HOST, --host) and a free port (--port)",
    )


def run_server(
    svc: Consentune,
    listeners: list[socket.socket],
    *,
    access_log: bool = True,
    workers: int = 1,
    log_format: str = "text",
    log_level: str = "info",
    worker_timeout_s: float = WORKER_TIMEOUT_S,
) -> None:
    """Serve ``svc`` on the bound ``listeners`` until Ctrl+C (or SIGTERM); say where, and how to stop.

    With ``workers`` > 1 each worker process opens its own service: on its own
    socket of the group when there is one per worker, else all on the one socket.
    """
    import uvicorn

    from consentune.api import create_app

    host, port = listeners[0].getsockname()[:2]
    url = _url(host, port)
    console.print(f"Consentune API on {url}/v1  (docs: {url}/docs), {workers} worker(s)", markup=False)
    console.print(f"Dashboard: {url}/dashboard/sign-in  (sign in with an artist or admin key)", markup=False)
    console.print(f"listening on {host} port {port}; press Ctrl+C to stop", markup=False)
    # json: our middleware writes the access lines (with request ids); text: uvicorn's, tokens redacted.
    # uvicorn's own forwarded-header handling stays off: CONSENTUNE_TRUSTED_PROXIES alone decides whom to believe,
    # and the shield must see the real peer (the benchmark clock is honoured from loopback peers only).
    logging_options: dict[str, object] = (
        {"log_config": None, "access_log": False}
        if log_format == "json"
        else {"log_config": LOG_CONFIG, "access_log": access_log}
    )
    try:
        if workers == 1:
            config = uvicorn.Config(create_app(svc), proxy_headers=False, **logging_options)  # type: ignore[arg-type]
            uvicorn.Server(config).run(sockets=listeners)
            return
        svc.close()
        from uvicorn.supervisors import Multiprocess

        from consentune.api.asgi import LOG_FORMAT_ENV, LOG_LEVEL_ENV
        from consentune.cli.supervisor import WorkerGroup

        os.environ[LOG_FORMAT_ENV], os.environ[LOG_LEVEL_ENV] = log_format, log_level  # workers are fresh processes
        config = uvicorn.Config(
            "consentune.api.asgi:worker_app",
            factory=True,
            workers=workers,
            proxy_headers=False,
            **logging_options,  # type: ignore[arg-type]
        )
        if len(listeners) == workers:
            WorkerGroup(config, listeners, hang_s=worker_timeout_s).run()
        else:
            Multiprocess(config, sockets=listeners).run()
    finally:
        for listener in listeners:
            listener.close()
        svc.close()
        console.print("server stopped")


def _settings() -> Settings:
    from consentune.config import Settings

    return Settings.from_env()


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
