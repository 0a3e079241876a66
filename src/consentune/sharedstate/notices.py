"""Revocation notices to every worker (Redis pub/sub), so in-memory snapshots drop revoked tracks at once.

The worker where consent changed runs the purgers itself; it then publishes
``{purpose, tracks, origin}`` and every other worker applies the same
in-memory drops (recommendation snapshot, similarity index).  Pub/sub is
fire-and-forget: a worker disconnected at that moment misses the notice and
catches up when its snapshot re-decides consent (the recommender's
``consent_ttl_s``, 30 s by default; the similarity index re-checks consent
through the gate on every read).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from consentune.observe import NULL_OBSERVER, Observer

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("consentune.sharedstate")
Apply = Callable[[str, Sequence[str]], None]  # (purpose, tracks) -> drop them from in-memory state


class RedisRevocationNotices:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        apply: Apply,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self._client = client
        self._channel = f"{prefix}revocations"
        self._apply = apply
        self._observer = observer
        self.origin = uuid.uuid4().hex
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, purpose: str, tracks: Sequence[str]) -> None:
        """Tell every other worker; a failure is logged, not raised (the revocation itself succeeded)."""
        message = json.dumps({"purpose": purpose, "tracks": list(tracks), "origin": self.origin})
        try:
            self._client.publish(self._channel, message.encode())
        except Exception:
            logger.exception("could not publish a revocation notice; other workers catch up at their next refresh")
        self._observer.revocation_notice(local=True)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._listen, name="consentune-revocations", daemon=True)
            self._thread.start()

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(self._channel)
                self._subscribed.set()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._handle(message["data"])
                pubsub.close()
            except Exception:
                self._subscribed.clear()
                logger.warning("revocation notices: Redis connection lost; reconnecting", exc_info=True)
                self._stop.wait(1.0)

    def _handle(self, data: bytes) -> None:
        try:
            notice = json.loads(data)
            if notice.get("origin") == self.origin:
                return
            self._apply(str(notice["purpose"]), [str(t) for t in notice["tracks"]])
            self._observer.revocation_notice(local=False)
        except Exception:
            logger.exception("a revocation notice could not be applied")


__all__ = ["RedisRevocationNotices"]
