"""The gate's once-per-window use logging, shared by every worker through Redis."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

logger = logging.getLogger("consentune.sharedstate")


class RedisUseDedup:
    """``SET key 1 NX PX window``: exactly one worker wins each (actor, purpose, action, track) per window.

    Keys expire with the window, so memory stays bounded by the uses of one
    window.  If Redis loses its keys (restart without persistence), each use
    is logged once more; while Redis is unreachable every use is logged: the
    ledger gets duplicates, never a gap, and serving goes on.
    """

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}use:"

    def first_uses(self, keys: Sequence[str], *, window_s: float) -> list[bool]:
        if not keys:
            return []
        window_ms = max(1, round(window_s * 1000))
        pipe = self._client.pipeline(transaction=False)
        for key in keys:
            pipe.set(
                self._prefix + hashlib.blake2b(key.encode(), digest_size=16).hexdigest(), b"1", nx=True, px=window_ms
            )
        try:
            return [bool(won) for won in pipe.execute()]
        except Exception:  # redis errors of any kind: log the use rather than fail the read
            logger.warning("use-log dedup: Redis unreachable; logging every use until it is back", exc_info=True)
            return [True] * len(keys)


__all__ = ["RedisUseDedup"]
