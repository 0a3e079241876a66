"""The web dashboard: artist pages and the operator console, served beside the JSON API.

Pages are rendered on the server (Jinja2) with a little JavaScript; every
asset is served from here (no CDN).  Sign-in is by API key and sets an
HttpOnly, SameSite=Strict session cookie; forms carry CSRF tokens.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from consentune.web.capabilities import available, served_paths
from consentune.web.routes import PREFIX, STATIC_DIR, router, session_principal
from consentune.web.session import SESSION_COOKIE


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard under /dashboard, its assets under /dashboard/static, and send / to it."""
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=303)


__all__ = ["PREFIX", "SESSION_COOKIE", "available", "install_dashboard", "served_paths", "session_principal"]
