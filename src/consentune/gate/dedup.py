"""Which uses of a track the gate logs: each (actor, purpose, action, track) at most once per window.

:class:`UseDedup` is the port; :class:`MemoryUseDedup` is the one-process
default.  With Redis configured, :class:`consentune.sharedstate.RedisUseDedup`
makes the window hold across all workers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

MAX_REMEMBERED = 1_000_000


class UseDedup(Protocol):
    def first_uses(self, keys: Sequence[str], *, window_s: float) -> list[bool]:
        """For each key, True if it was not seen in the last ``window_s`` seconds (and mark it seen)."""


class MemoryUseDedup:
    """In-process: exact for one worker; with W workers a use may be logged up to W times per window."""

    def __init__(self, *, max_remembered: int = MAX_REMEMBERED) -> None:
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._max = max_remembered

    def first_uses(self, keys: Sequence[str], *, window_s: float) -> list[bool]:
        now = time.monotonic()
        out = []
        with self._lock:
            for key in keys:
                fresh = now - self._seen.get(key, float("-inf")) >= window_s
                if fresh:
                    self._seen[key] = now
                    self._seen.move_to_end(key)
                out.append(fresh)
            while len(self._seen) > self._max:
                self._seen.popitem(last=False)
        return out


def use_key(actor: str, purpose: str, action: str, track: str) -> str:
    return f"{actor}\x1f{purpose}\x1f{action}\x1f{track}"


__all__ = ["MemoryUseDedup", "UseDedup", "use_key"]
