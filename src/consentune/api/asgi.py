"""The app factory ``consentune serve --workers N`` hands to uvicorn: each worker opens its own service."""

from __future__ import annotations

import os

from fastapi import FastAPI

from consentune.api.app import create_app
from consentune.ops import configure_logging
from consentune.service import open_service

LOG_FORMAT_ENV = "CONSENTUNE_LOG_FORMAT"
LOG_LEVEL_ENV = "CONSENTUNE_LOG_LEVEL"


def worker_app() -> FastAPI:
    """Settings and log format come from the environment the parent process passed down."""
    if os.environ.get(LOG_FORMAT_ENV) == "json":  # text: uvicorn's own access lines (LOG_CONFIG) stay as they are
        configure_logging(level=os.environ.get(LOG_LEVEL_ENV, "info"), json_lines=True)
    return create_app(open_service())


__all__ = ["LOG_FORMAT_ENV", "LOG_LEVEL_ENV", "worker_app"]
