"""A small thread-safe LRU map: per-worker caches on request paths stay bounded whatever the catalogue size."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

from consentune.errors import InvalidInput

_K = TypeVar("_K")
_V = TypeVar("_V")


class LruCache(Generic[_K, _V]):
    """At most ``capacity`` entries; the least recently used one goes first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise InvalidInput(f"cache capacity {capacity} must be at least 1", hint="e.g. capacity=100_000")
        self.capacity = capacity
        self._items: OrderedDict[_K, _V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: _K) -> _V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: _K, value: _V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


__all__ = ["LruCache"]
