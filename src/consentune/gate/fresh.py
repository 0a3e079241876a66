"""Samples decoded while an upload was validated, kept for the ingest hook's first read of that upload.

Validating an upload decodes all of it; the fingerprint taken right after
needs the same audio mixed down and resampled.  Keeping that one decode
saves the second one (a third of ingest's CPU on compressed uploads).  The
gate still checks consent and records the read; only the decode is skipped.
Each entry is taken once and dropped when its ingest ends; the oldest go first when the
sample budget (32M samples: an hour of mono audio at 8 kHz) is full.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

_Key = tuple[str, bool, int | None]  # (content sha256, mono, sample rate asked for)


class FreshDecodes:
    """A small, thread-safe, take-once store of decoded uploads, bounded by samples held."""

    def __init__(self, *, max_samples: int = 2**25) -> None:
        self._max_samples = max_samples
        self._entries: OrderedDict[_Key, tuple[np.ndarray, int]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def put(self, key: _Key, samples: np.ndarray, rate: int) -> None:
        if samples.size > self._max_samples:
            return  # one upload larger than the budget: its hook decodes again
        with self._lock:
            self._drop(key)
            self._entries[key] = (samples, rate)
            self._held += samples.size
            while self._held > self._max_samples:
                self._drop(next(iter(self._entries)))

    def take(self, key: _Key) -> tuple[np.ndarray, int] | None:
        with self._lock:
            found = self._entries.get(key)
            self._drop(key)
            return found

    def forget(self, sha256: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == sha256]:
                self._drop(key)

    def _drop(self, key: _Key) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self._held -= found[0].size


__all__ = ["FreshDecodes"]
