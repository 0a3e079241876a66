"""FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

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
    routes_verify,
)
from consentune.api.docs_pages import install_docs
from consentune.api.errors import install_error_handlers
from consentune.api.limits import RequestLimits
from consentune.api.openapi import declare_errors
from consentune.errors import Blocked, ChallengeRequired, ConsentuneError, NewcomerLimit, StreamSuperseded, Throttled
from consentune.ops.http import RequestContext
from consentune.scheduler import Job, Scheduler
from consentune.service import Consentune, reconcile_fingerprints

logger = logging.getLogger("consentune.api")

_SHIELD_ACTIONS: tuple[tuple[type[ConsentuneError], str], ...] = (
    (Blocked, "block"),
    (ChallengeRequired, "challenge"),
    (Throttled, "throttle"),
    (StreamSuperseded, "supersede"),
    (NewcomerLimit, "newcomer_limit"),
)


def _shield_counter(service: Consentune) -> Callable[[ConsentuneError], None]:
    """Counts what the shield turned away, as the API answers it (one place, whatever shield code raised it)."""

    def count(exc: ConsentuneError) -> None:
        for kind, action in _SHIELD_ACTIONS:
            if isinstance(exc, kind):
                service.metrics.shield_action(action)
                return

    return count


def _sweep(service: Consentune) -> None:
    """Lapsed time-bounded consents must purge derived data even when nobody revokes anything,
    a revocation whose purge failed half-way is finished here, originals a crash orphaned are removed, and
    the fingerprint index is reconciled with the catalogue (an upload killed before it was indexed)."""
    service.consent.retry_pending_purges(actor="system:sweep")
    service.gate.sweep(actor="system:sweep")
    service.gate.sweep_orphans()
    reconcile_fingerprints(service, actor="system:sweep", reindex=service.settings.identify_at_ingest, recent_only=True)


async def _integrate_forever(service: Consentune, interval_s: float) -> None:
    """Integrate queued ledger appends, sign and publish, regularly.  Every worker runs this loop, but one
    integrator (and so one signer) runs at a time across all workers and hosts: the others skip their turn."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await asyncio.to_thread(service.ledger.integrate, wait=False)
        except Exception:
            logger.exception("integrating the ledger failed; retrying in %.1f s", interval_s)


def _scheduler(service: Consentune, *, sweep_interval_s: float, wal_interval_s: float) -> Scheduler:
    """The consent sweep, the SQLite WAL checkpoint and the fraud collusion search, once per deployment (only the
    leader runs them)."""
    assert service.leases is not None
    jobs = [
        Job("sweep", sweep_interval_s, lambda: _sweep(service)),
        Job("wal-checkpoint", wal_interval_s, service.store.checkpoint_wal),
        Job("fraud-collusion", service.fraud.collusion_every_s, service.fraud.search_collusion),
    ]
    gauge = service.metrics.leader
    return Scheduler(
        service.leases, jobs, observer=service.metrics, on_leadership=lambda leading: gauge.set(1 if leading else 0)
    )


async def _warm_index(service: Consentune) -> None:
    """Catch this machine's copy of a shared fingerprint index up with the feed in the background."""
    try:
        held = await asyncio.to_thread(service.identify.warm_index)
    except Exception:  # the first lookup retries; a start-up hiccup must not stop the worker
        logger.warning("could not bring the fingerprint index up to date at start-up", exc_info=True)
    else:
        logger.info("fingerprint index ready: %d tracks", held)


def create_app(
    service: Consentune,
    *,
    sweep_interval_s: float = 600.0,
    integrate_interval_s: float | None = None,
    wal_interval_s: float = 60.0,
    scheduler_tick_s: float = 5.0,
) -> FastAPI:
    """The API; its lifespan runs the ledger integrator, the scheduler (jobs only while this worker leads)
    and revocation notices."""
    interval = service.settings.ledger_integrate_interval_s if integrate_interval_s is None else integrate_interval_s

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        scheduler = _scheduler(service, sweep_interval_s=sweep_interval_s, wal_interval_s=wal_interval_s)
        tasks = [
            asyncio.create_task(scheduler.run_forever(scheduler_tick_s)),
            asyncio.create_task(_integrate_forever(service, interval)),
        ]
        with contextlib.suppress(Exception):  # a database hiccup at start must not stop the worker
            service.metrics.ledger_size.set(await asyncio.to_thread(lambda: service.ledger.integrated_size))
        warming = asyncio.create_task(_warm_index(service))
        if service.notices is not None:
            service.notices.start()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await warming  # its thread reads the index: let it finish before the service is closed
            service.metrics.worker_exited(os.getpid())

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
    app.add_middleware(RequestContext, metrics=service.metrics)
    install_error_handlers(app, on_error=_shield_counter(service))
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
        routes_verify,
    ):
        app.include_router(module.router)

    @app.get("/v1/health", tags=["meta"])
    def health() -> dict[str, object]:
        """Liveness: this worker answers.  Touches nothing else (see ``/v1/ready``)."""
        return {"status": "ok", "version": __version__}

    @app.get("/v1/ready", tags=["meta"], responses={503: {"description": "a part is unreachable"}})
    def ready() -> JSONResponse:
        """Readiness: database, Redis (if configured) and blob store answer; 503 naming the failing part if not."""
        report = service.readiness()
        body = {**report.to_dict(), "version": __version__}
        if not report.ok:
            body["error"] = {
                "code": "not_ready",
                "message": f"unreachable: {', '.join(report.failing)}",
                "hint": "see parts.<name>.error; the worker keeps answering /v1/health meanwhile",
            }
        return JSONResponse(body, status_code=200 if report.ok else 503)

    @app.get("/metrics", tags=["meta"], include_in_schema=False)
    def metrics() -> Response:
        """Prometheus text format; with several workers, the sum over all of them."""
        payload, content_type = service.metrics.exposition()
        return Response(payload, media_type=content_type)

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
