"""One active stream per listener: a new play ends the previous play's right to fetch more audio.

This is what streaming services do ("playing on another device"): a listener
hears one track at a time, so an identity running plays side by side gains
nothing from it.  The identity is the account when there is one (every device
of it), else the session.  :class:`ActivePlays` keeps it in one process
(bounded, oldest forgotten); :class:`SharedActivePlays` keeps it in shared
cells, so with many workers a listener still holds one stream.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Protocol

from consentune.errors import StreamSuperseded
from consentune.shield.cells import CellWrite, SharedCells


class ActiveStreams(Protocol):
    def start(self, identity: str, play: str) -> None:
        """``play`` is now ``identity``'s only stream; earlier ones stop."""
        ...

    def check(self, identity: str, play: str) -> None:
        """Raise :class:`StreamSuperseded` unless ``play`` is ``identity``'s latest (a forgotten one passes)."""
        ...

    def is_latest(self, identity: str, play: str) -> bool:
        """Whether ``play`` is known to be ``identity``'s latest; unlike :meth:`check`, a forgotten one is not."""
        ...


class ActivePlays:
    """The latest play (its token nonce) of every listener identity."""

    def __init__(self, *, max_identities: int = 1_000_000) -> None:
        self._latest: OrderedDict[str, str] = OrderedDict()
        self._max = max_identities
        self._lock = threading.Lock()

    def start(self, identity: str, play: str) -> None:
        """``play`` is now ``identity``'s only stream; earlier ones stop."""
        with self._lock:
            self._latest[identity] = play
            self._latest.move_to_end(identity)
            if len(self._latest) > self._max:
                self._latest.popitem(last=False)

    def check(self, identity: str, play: str) -> None:
        """Raise :class:`StreamSuperseded` unless ``play`` is ``identity``'s latest (a forgotten one passes)."""
        with self._lock:
            latest = self._latest.get(identity)
        _ensure_latest(latest, play)

    def is_latest(self, identity: str, play: str) -> bool:
        """Whether ``play`` is known to be ``identity``'s latest; unlike :meth:`check`, a forgotten one is not."""
        with self._lock:
            return self._latest.get(identity) == play


class SharedActivePlays:
    """The latest play per identity in shared cells: the newest start wins on every worker at once.

    A start is one unconditional write (the newest start is the one that
    counts, so there is nothing to compare); a check is one read.  Entries
    expire ``ttl_s`` after the start, longer than any play's token is valid.
    """

    def __init__(self, cells: SharedCells, *, ttl_s: float = 6 * 3600.0) -> None:
        self._cells = cells
        self._ttl_s = ttl_s

    def start(self, identity: str, play: str) -> None:
        self._cells.commit([CellWrite(PREFIX + identity, None, play.encode())], ttl_s=self._ttl_s)

    def check(self, identity: str, play: str) -> None:
        (cell,) = self._cells.load([PREFIX + identity])
        _ensure_latest(None if cell.data is None else cell.data.decode(), play)

    def is_latest(self, identity: str, play: str) -> bool:
        """Whether ``play`` is known to be ``identity``'s latest; unlike :meth:`check`, a forgotten one is not."""
        (cell,) = self._cells.load([PREFIX + identity])
        return cell.data is not None and cell.data.decode() == play


PREFIX = "active:"


def _ensure_latest(latest: str | None, play: str) -> None:
    if latest is not None and latest != play:
        raise StreamSuperseded(
            "a newer play of this listener ended this stream; a listener plays one track at a time",
            hint="keep one player per account; play the track again to resume here",
        )


def listener_identity(*, session_id: str, account_id: str | None) -> str:
    """The account when signed in (all its devices share one stream), else the session."""
    return f"account:{account_id}" if account_id else f"session:{session_id}"


__all__ = ["ActivePlays", "ActiveStreams", "SharedActivePlays", "listener_identity"]
