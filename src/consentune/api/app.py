"""FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from consentune import __version__
from consentune.api import (
    routes_admin,
    routes_catalog,
    routes_claims,
    routes_consent,
    routes_fraud,
    routes_identify,
    routes_ledger,
    routes_listen,
    routes_organize,
    routes_plays,
    routes_recommend,
    routes_signals,
)
from consentune.api.docs_pages import install_docs
from consentune.api.errors import install_error_handlers
from consentune.api.limits import BodyLimit
from consentune.api.openapi import declare_errors
from consentune.service import Consentune

logger = logging.getLogger("consentune.api")


async def _sweep_forever(service: Consentune, interval_s: float) -> None:
    """Lapsed time-bounded consents must purge derived data even when nobody revokes anything,
    a revocation whose purge failed half-way is finished here, and originals a crash orphaned are removed."""
    while True:
        try:
            await run_in_threadpool(service.consent.retry_pending_purges, actor="system:sweep")
            await run_in_threadpool(service.gate.sweep, actor="system:sweep")
            await run_in_threadpool(service.gate.sweep_orphans)
        except Exception:  # one failed sweep must not end the loop; the next one retries
            logger.exception("consent sweep failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)


async def _integrate_forever(service: Consentune, interval_s: float, *, wal_every_s: float = 60.0) -> None:
    """Integrate queued ledger appends, sign and publish, regularly; one integrator runs at a time
    across all workers and hosts (the others skip their turn instead of waiting).  About once a minute,
    fold SQLite's WAL back into the database, so it cannot grow without bound under steady readers."""
    last_wal = time.monotonic()
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(service.ledger.integrate, wait=False)
        except Exception:
            logger.exception("integrating the ledger failed; retrying in %.1f s", interval_s)
        if time.monotonic() - last_wal < wal_every_s:
            continue
        last_wal = time.monotonic()
        try:
            await run_in_threadpool(service.store.checkpoint_wal)
        except Exception:
            logger.exception("checkpointing the SQLite WAL failed; retrying in %.0f s", wal_every_s)


def create_app(
    service: Consentune, *, sweep_interval_s: float = 600.0, integrate_interval_s: float | None = None
) -> FastAPI:
    interval = service.settings.ledger_integrate_interval_s if integrate_interval_s is None else integrate_interval_s

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(_sweep_forever(service, sweep_interval_s)),
            asyncio.create_task(_integrate_forever(service, interval)),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        lifespan=lifespan,
        title="Consentune",
        version=__version__,
        description="AI services for audio platforms with enforceable, provable artist consent.",
        docs_url=None,  # served by install_docs with local assets (no CDN)
        redoc_url=None,
    )
    app.state.consentune = service
    install_docs(app)
    install_error_handlers(app)
    for module in (
        routes_catalog,
        routes_consent,
        routes_identify,
        routes_claims,
        routes_ledger,
        routes_admin,
        routes_listen,
        routes_organize,
        routes_plays,
        routes_fraud,
        routes_recommend,
        routes_signals,
    ):
        app.include_router(module.router)

    @app.get("/v1/health", tags=["meta"])
    def health() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "ledger_size": service.ledger.integrated_size}

    from consentune.web import available, install_dashboard, served_paths

    @app.get("/v1/capabilities", tags=["meta"])
    def capabilities() -> dict[str, object]:
        """Optional capabilities this server has (the dashboard shows their sections only then)."""
        return {"optional": available(served_paths(app)), "dashboard": "/dashboard"}

    install_dashboard(app)
    declare_errors(app)
    app.add_middleware(BodyLimit, max_upload_bytes=service.settings.max_upload_bytes)
    return app


__all__ = ["create_app"]
