"""FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from consentune import __version__
from consentune.api import (
    routes_admin,
    routes_catalog,
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
from consentune.api.errors import install_error_handlers
from consentune.api.limits import RequestLimits
from consentune.api.openapi import declare_errors
from consentune.service import Consentune

logger = logging.getLogger("consentune.api")


async def _sweep_forever(service: Consentune, interval_s: float) -> None:
    """Lapsed time-bounded consents must purge derived data even when nobody revokes anything,
    and a revocation whose purge failed half-way is finished here."""
    while True:
        try:
            await run_in_threadpool(service.consent.retry_pending_purges, actor="system:sweep")
            await run_in_threadpool(service.gate.sweep, actor="system:sweep")
        except Exception:  # one failed sweep must not end the loop; the next one retries
            logger.exception("consent sweep failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)


async def _checkpoint_forever(service: Consentune, interval_s: float) -> None:
    """Sign the ledger head regularly, so public checkpoints stay fresh without signing per request."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(service.ledger.checkpoint)
        except Exception:
            logger.exception("signing a ledger checkpoint failed; retrying in %.0f s", interval_s)


def create_app(service: Consentune, *, sweep_interval_s: float = 600.0, checkpoint_interval_s: float = 60.0) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(_sweep_forever(service, sweep_interval_s)),
            asyncio.create_task(_checkpoint_forever(service, checkpoint_interval_s)),
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
    )
    app.state.consentune = service
    install_error_handlers(app)
    for module in (
        routes_catalog,
        routes_consent,
        routes_identify,
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
        return {"status": "ok", "version": __version__, "ledger_size": service.ledger.size}

    from consentune.web import available, install_dashboard, served_paths

    @app.get("/v1/capabilities", tags=["meta"])
    def capabilities() -> dict[str, object]:
        """Optional capabilities this server has (the dashboard shows their sections only then)."""
        return {"optional": available(served_paths(app)), "dashboard": "/dashboard"}

    install_dashboard(app)
    declare_errors(app)
    app.add_middleware(RequestLimits, max_upload_bytes=service.settings.max_upload_bytes)
    return app


__all__ = ["create_app"]
