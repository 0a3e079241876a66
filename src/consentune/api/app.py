"""FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from consentune import __version__
from consentune.api import routes_admin, routes_catalog, routes_consent, routes_ledger
from consentune.api.errors import install_error_handlers
from consentune.service import Consentune


def create_app(service: Consentune) -> FastAPI:
    app = FastAPI(
        title="Consentune",
        version=__version__,
        description="AI services for audio platforms with enforceable, provable artist consent.",
    )
    app.state.consentune = service
    install_error_handlers(app)
    for module in (routes_catalog, routes_consent, routes_ledger, routes_admin):
        app.include_router(module.router)

    @app.get("/v1/health", tags=["meta"])
    def health() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "ledger_size": service.ledger.size}

    return app


__all__ = ["create_app"]
