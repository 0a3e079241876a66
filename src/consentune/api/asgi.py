"""The app factory ``consentune serve --workers N`` hands to uvicorn: each worker opens its own service."""

from __future__ import annotations

from fastapi import FastAPI

from consentune.api.app import create_app
from consentune.service import open_service


def worker_app() -> FastAPI:
    """Settings come from the ``CONSENTUNE_*`` environment the parent process passed down."""
    return create_app(open_service())


__all__ = ["worker_app"]
