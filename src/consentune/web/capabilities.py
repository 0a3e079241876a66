"""Optional capabilities the dashboard shows only when this server exposes them.

A section is enabled when the app serves its JSON route; the page then
loads that route in the browser with the visitor's own session, so it shows
exactly what the JSON API would show them and nothing else.  Adding a
section for a new capability is one entry here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PARAM = re.compile(r"\{[^}]*\}")


@dataclass(frozen=True, slots=True)
class Capability:
    key: str
    title: str
    route: str  # the JSON route, with {track_id} for track-scoped ones
    scope: str  # "track", "artist" or "operator"
    summary: str
    missing: str  # what the page says while the server lacks it

    def url(self, **params: str) -> str:
        return self.route.format(**params)


OPTIONAL: tuple[Capability, ...] = (
    Capability(
        key="fraud-alerts",
        title="Fraud alerts",
        route="/v1/fraud/alerts",
        scope="artist",
        summary="Suspicious listening on your tracks found by fraud detection.",
        missing="Fraud detection is not enabled on this server, so no alerts are reported.",
    ),
    Capability(
        key="fraud-queue",
        title="Fraud alert queue",
        route="/v1/fraud/alerts",
        scope="operator",
        summary="Every open fraud alert, for review.",
        missing="Fraud detection is not enabled on this server.",
    ),
)


def _shape(path: str) -> str:
    return _PARAM.sub("{}", path)


def served_paths(app: Any) -> frozenset[str]:
    """The app's paths with parameter names erased (``/v1/tracks/{}/matches``).

    Read from the OpenAPI document, which is public and lists routes of included
    routers too (the route objects' nesting changes between FastAPI versions).
    """
    paths: dict[str, Any] = app.openapi().get("paths", {})
    return frozenset(_shape(path) for path in paths)


def sections(paths: frozenset[str], *, scope: str) -> list[tuple[Capability, bool]]:
    """Each optional capability of ``scope`` with whether this server has it."""
    return [(c, _shape(c.route) in paths) for c in OPTIONAL if c.scope == scope]


def available(paths: frozenset[str]) -> list[str]:
    """Keys of the optional capabilities this server serves."""
    return sorted({c.key for c in OPTIONAL if _shape(c.route) in paths})


__all__ = ["OPTIONAL", "Capability", "available", "sections", "served_paths"]
