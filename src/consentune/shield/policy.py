"""TrackPolicySource: the registry's current answers for the AI purposes, shaped for the signals.

Decisions come from the gate's read-only ``decide`` (consent metadata, not
content, so nothing is logged) and are cached briefly, but never across a
consent change: the cache is keyed by the consent version, so a change
reaches robots.txt, TDMRep, headers and embedded XMP on the next request;
new tracks appear within ``ttl_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar, cast
from urllib.parse import quote

from consentune.catalog import Catalog
from consentune.gate import PurposeGate
from consentune.shield.crawlers import load_ai_crawlers
from consentune.shield.signals import (
    CatalogPolicy,
    TrackPolicy,
    embed_xmp,
    has_xmp_carriage,
    robots_txt,
    tdmrep_json,
    track_headers,
    xmp_packet,
)
from consentune.types import AI_INPUT, TRAIN_AI, TRAIN_GENERATIVE, Purpose, Track, TrackId

_T = TypeVar("_T")

SIGNAL_PURPOSES: tuple[Purpose, ...] = (TRAIN_AI, TRAIN_GENERATIVE, AI_INPUT)
SIDECAR_PATH = "/v1/listen/tracks/{id}/policy.xmp"


class TrackPolicySource:
    def __init__(self, *, gate: PurposeGate, catalog: Catalog, ttl_s: float = 30.0, policy_url: str | None = None):
        self._gate = gate
        self._catalog = catalog
        self._ttl_s = ttl_s
        self.policy_url = policy_url
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[TrackId, TrackPolicy]] = (float("-inf"), {})
        self._cached_version = -1
        self._renders: dict[tuple[str, str], tuple[float, object]] = {}

    def catalog_policy(self) -> CatalogPolicy:
        policies = self._policies()
        return CatalogPolicy(tuple(policies.values()), policy_url=self.policy_url)

    def robots_txt(self, *, base_url: str) -> str:
        """robots.txt for the current policy, rendered once per policy refresh (it is large for big catalogues)."""
        return self._rendered("robots", base_url, lambda p: robots_txt(p, load_ai_crawlers(), base_url=base_url))

    def tdmrep(self, *, base_url: str) -> list[dict[str, object]]:
        return self._rendered("tdmrep", base_url, lambda p: tdmrep_json(p, base_url=base_url))

    def _rendered(self, kind: str, base_url: str, render: Callable[[CatalogPolicy], _T]) -> _T:
        self._policies()
        stamp = self._cached[0]
        key = (kind, base_url)
        found = self._renders.get(key)
        if found is not None and found[0] == stamp:
            return cast(_T, found[1])
        value = render(self.catalog_policy())
        with self._lock:
            self._renders[key] = (stamp, value)
        return value

    def track_policy(self, track: Track) -> TrackPolicy:
        found = self._policies().get(track.id)
        return found if found is not None else self._decide([track.id])[track.id]

    def headers(self, track: Track) -> dict[str, str]:
        headers = track_headers(self.track_policy(track), policy_url=self.policy_url)
        if not has_xmp_carriage(track.format):
            sidecar = SIDECAR_PATH.format(id=quote(track.id, safe=""))
            headers["Link"] = f'<{sidecar}>; rel="describedby"; type="application/rdf+xml"'
        return headers

    def sidecar(self, track: Track, *, artist: str) -> bytes:
        return xmp_packet(self.track_policy(track), title=track.title, artist=artist, policy_url=self.policy_url)

    def package(self, track: Track, data: bytes, *, artist: str = "") -> bytes:
        """The bytes a listener may download: the original with the XMP policy embedded where possible."""
        if not has_xmp_carriage(track.format):
            return data
        return embed_xmp(data, format=track.format, xmp=self.sidecar(track, artist=artist))

    def _policies(self) -> dict[TrackId, TrackPolicy]:
        version = self._gate.consent_version()
        loaded_at, policies = self._cached
        if version == self._cached_version and time.monotonic() - loaded_at < self._ttl_s:
            return policies
        tracks = [t.id for t in self._catalog.tracks(limit=10**9)]
        fresh = self._decide(tracks)
        with self._lock:
            self._cached = (time.monotonic(), fresh)
            self._cached_version = version
        return fresh

    def _decide(self, tracks: list[TrackId]) -> dict[TrackId, TrackPolicy]:
        answers = {p: self._gate.decide(purpose=p, tracks=tracks).allowed.tolist() for p in SIGNAL_PURPOSES}
        return {
            track: TrackPolicy(track, {p: bool(answers[p][i]) for p in SIGNAL_PURPOSES})
            for i, track in enumerate(tracks)
        }


__all__ = ["SIDECAR_PATH", "SIGNAL_PURPOSES", "TrackPolicySource"]
