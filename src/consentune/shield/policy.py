"""TrackPolicySource: the registry's current answers for the AI purposes, shaped for the signals.

Decisions come from the gate's read-only ``decide`` (consent metadata, not
content, so nothing is logged).  Nothing here works on the whole catalogue:

- A track's policy is decided on demand and kept in a bounded LRU cache.  An
  entry is reused while its artist's consent counter (bumped in the same
  transaction as every consent change) is unchanged and no time-bounded rule
  has started or ended since, so a consent change shows on the next request.
- robots.txt and TDMRep are rendered from aggregates (may any track allow a
  purpose?) and kept until the site-wide consent counter moves, or at most
  ``ttl_s``; each track's own answer travels in its page's headers and files.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar
from urllib.parse import quote

from consentune.gate import PurposeGate
from consentune.ports import PublicCatalogRepo
from consentune.shield.crawlers import load_ai_crawlers
from consentune.shield.lru import LruCache
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
from consentune.types import AI_INPUT, TRAIN_AI, TRAIN_GENERATIVE, ArtistId, Purpose, Track, TrackId

_T = TypeVar("_T")

SIGNAL_PURPOSES: tuple[Purpose, ...] = (TRAIN_AI, TRAIN_GENERATIVE, AI_INPUT)
SIDECAR_PATH = "/v1/listen/tracks/{id}/policy.xmp"


@dataclass(frozen=True, slots=True)
class Rendered(Generic[_T]):
    """A site-wide signal with its entity tag (quoted, for ``ETag``) and the consent counter it reflects."""

    value: _T
    etag: str
    version: int
    made_at: float


@dataclass(frozen=True, slots=True)
class _Decided:
    artist_id: ArtistId
    version: int
    stable_until: datetime | None
    policy: TrackPolicy


class TrackPolicySource:
    def __init__(
        self,
        *,
        gate: PurposeGate,
        versions: PublicCatalogRepo,
        ttl_s: float = 30.0,
        policy_url: str | None = None,
        cache_size: int = 100_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._gate = gate
        self._versions = versions
        self._ttl_s = ttl_s
        self.policy_url = policy_url
        self._clock = clock
        self._lock = threading.Lock()
        self._decided: LruCache[TrackId, _Decided] = LruCache(cache_size)
        self._renders: dict[tuple[str, str], Rendered[object]] = {}

    def site_policy(self) -> CatalogPolicy:
        """The catalogue-wide policy from aggregates: no per-track rules, track pages open when any may be."""
        allowed = self._versions.purposes_ever_allowed(SIGNAL_PURPOSES, at=self._clock())
        return CatalogPolicy((), policy_url=self.policy_url, crawlable_tracks=allowed[TRAIN_AI])

    def robots(self, *, base_url: str) -> Rendered[str]:
        """robots.txt, re-rendered only when consent changed (or ``ttl_s`` passed, for time-bounded rules)."""
        return self._rendered("robots", base_url, lambda p: robots_txt(p, load_ai_crawlers(), base_url=base_url))

    def robots_txt(self, *, base_url: str) -> str:
        return self.robots(base_url=base_url).value

    def tdmrep_rendered(self, *, base_url: str) -> Rendered[list[dict[str, object]]]:
        return self._rendered("tdmrep", base_url, lambda p: tdmrep_json(p, base_url=base_url))

    def tdmrep(self, *, base_url: str) -> list[dict[str, object]]:
        return self.tdmrep_rendered(base_url=base_url).value

    def _rendered(self, kind: str, base_url: str, render: Callable[[CatalogPolicy], _T]) -> Rendered[_T]:
        version, now = self._versions.consent_version(), time.monotonic()
        key = (kind, base_url)
        found = self._renders.get(key)
        if found is not None and found.version == version and now - found.made_at < self._ttl_s:
            return found  # type: ignore[return-value]
        value = render(self.site_policy())
        etag = '"' + hashlib.sha256(repr((kind, value)).encode()).hexdigest()[:32] + '"'
        fresh: Rendered[_T] = Rendered(value, etag, version, now)
        with self._lock:
            if len(self._renders) > 64:  # base URLs come from requests: keep the map small
                self._renders.clear()
            self._renders[key] = fresh  # type: ignore[assignment]
        return fresh

    def track_policy(self, track: Track) -> TrackPolicy:
        """The track's answers: from the cache while its artist's consent is unchanged, else decided now."""
        version = self._versions.artist_consent_version(track.artist_id)
        found = self._decided.get(track.id)
        if (
            found is not None and found.version == version and found.artist_id == track.artist_id
            and (found.stable_until is None or self._clock() < found.stable_until)
        ):  # fmt: skip
            return found.policy
        decisions, stable_until = self._gate.decide_purposes(purposes=SIGNAL_PURPOSES, tracks=[track.id])
        policy = TrackPolicy(track.id, {p: bool(decisions[p].allowed[0]) for p in SIGNAL_PURPOSES})
        self._decided.put(track.id, _Decided(track.artist_id, version, stable_until, policy))
        return policy

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


__all__ = ["SIDECAR_PATH", "SIGNAL_PURPOSES", "Rendered", "TrackPolicySource"]
