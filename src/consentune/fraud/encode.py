"""Play events as columns of dense integer ids, the form the detector works on.

Strings (user, track, network, device) are interned once into dense ids so
per-account state lives in plain arrays indexed by id; times are float
seconds since the Unix epoch.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from consentune.types import PlayEvent

I32 = npt.NDArray[np.int32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EventBatch:
    """``n`` play events as parallel arrays (shape ``(n,)`` each).

    ``net`` and ``device`` are -1 when unknown; ``created`` (account creation,
    epoch seconds) is NaN when unknown; ``ms`` is milliseconds played.
    """

    user: I32
    track: I32
    t: F64
    ms: I32
    net: I32
    device: I32
    created: F64

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def take(self, index: npt.NDArray[Any]) -> EventBatch:
        """The events at ``index`` (an integer or boolean index array)."""
        return EventBatch(
            self.user[index],
            self.track[index],
            self.t[index],
            self.ms[index],
            self.net[index],
            self.device[index],
            self.created[index],
        )

    @staticmethod
    def concat(batches: Sequence[EventBatch]) -> EventBatch:
        if not batches:
            return empty_batch()
        return EventBatch(*(np.concatenate([getattr(b, name) for b in batches]) for name in _FIELDS))


_FIELDS = ("user", "track", "t", "ms", "net", "device", "created")


def empty_batch() -> EventBatch:
    ints = np.zeros(0, dtype=np.int32)
    floats = np.zeros(0, dtype=np.float64)
    return EventBatch(ints, ints, floats, ints, ints, ints, floats)


class Interner:
    """Strings to dense ids 0, 1, 2, ... in order of first sight."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self.names)

    def id(self, name: str) -> int:
        found = self._ids.get(name)
        if found is None:
            found = self._ids[name] = len(self.names)
            self.names.append(name)
        return found

    def ids(self, names: Sequence[str | None]) -> I32:
        """Dense ids for ``names``; None becomes -1."""
        lookup = self._ids
        out = np.empty(len(names), dtype=np.int32)
        for i, name in enumerate(names):
            if name is None:
                out[i] = -1
                continue
            found = lookup.get(name)
            if found is None:
                found = lookup[name] = len(self.names)
                self.names.append(name)
            out[i] = found
        return out

    def get(self, name: str) -> int | None:
        return self._ids.get(name)


def network_of(ip: str | None) -> str | None:
    """The shared-infrastructure key of an address: its IPv4 /24 or IPv6 /48."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


class EventEncoder:
    """Interns users, tracks, networks (/24, /48) and devices of play events."""

    def __init__(self) -> None:
        self.users = Interner()
        self.tracks = Interner()
        self.nets = Interner()
        self.devices = Interner()
        self._net_cache: dict[str, str | None] = {}

    def encode(self, events: Sequence[PlayEvent]) -> EventBatch:
        nets = [self._net(e.ip) for e in events]
        return EventBatch(
            user=self.users.ids([e.user_id for e in events]),
            track=self.tracks.ids([e.track_id for e in events]),
            t=np.array([e.played_at.timestamp() for e in events], dtype=np.float64),
            ms=np.array([e.ms_played for e in events], dtype=np.int32),
            net=self.nets.ids(nets),
            device=self.devices.ids([e.device_id for e in events]),
            created=np.array(
                [e.account_created_at.timestamp() if e.account_created_at else np.nan for e in events],
                dtype=np.float64,
            ),
        )

    def _net(self, ip: str | None) -> str | None:
        if ip is None:
            return None
        if ip not in self._net_cache:
            if len(self._net_cache) > 1_000_000:
                self._net_cache.clear()
            self._net_cache[ip] = network_of(ip)
        return self._net_cache[ip]


__all__ = ["EventBatch", "EventEncoder", "Interner", "empty_batch", "network_of"]
