"""HTTP API (FastAPI), versioned under /v1."""

from consentune.api.app import create_app

__all__ = ["create_app"]
