"""Execution engines for batch jobs (adapters behind :class:`consentune.jobs.Engine`).

``local`` (default) runs a process pool over this machine's cores; ``ray``
joins a Ray cluster (``CONSENTUNE_RAY_ADDRESS`` / ``--ray-address``) or
starts a local one.  Only this package imports Ray.
"""

from __future__ import annotations

from consentune.engines.local import LocalEngine
from consentune.errors import InvalidInput
from consentune.jobs.model import Engine

ENGINES = ("local", "ray")


def open_engine(name: str, *, workers: int | None = None, address: str | None = None) -> Engine:
    """A started engine; close it when done.  ``workers`` caps parallel tasks (default: every core)."""
    if name == "local":
        return LocalEngine(workers=workers)
    if name == "ray":
        from consentune.engines.ray import RayEngine

        return RayEngine(address=address, workers=workers)
    raise InvalidInput(f"unknown engine {name!r}", hint=f"use one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "LocalEngine", "open_engine"]
