"""Blocks and lifts every worker sees at once, through the shield's shared cells.

The database stays the record (each worker still reloads live blocks from
it every few seconds, which also refills this board after a Redis restart);
the board makes a block decided on one worker stop the subject on all of
them at its next request (no second decision recorded for it), and a lift
on one worker end the block on all of them at once: ``lifted:<record id>``
overrides a worker's cached copy of the database until that copy reloads.
A lockdown's refusal of a newcomer is recorded once per deployment through
``refused:<subject>`` (the first worker to claim it records it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence

from consentune.shield.cells import CellWrite, PrefetchCells, SharedCells, Take

CLAIM_S = 10.0
_CLAIMED = b"claimed"


class SharedBlocks:
    """``block:<subject>`` holds "record_id until"; ``lifted:<record id>`` marks a lift.  Both expire with
    the block."""

    def __init__(self, cells: SharedCells, *, block_s: float) -> None:
        self._cells = cells
        self._ttl_s = block_s

    @contextlib.contextmanager
    def prefetched(
        self, subjects: Sequence[str], more: Sequence[str], *, takes: Sequence[Take] = (), now: float = 0.0
    ) -> Iterator[list[tuple[bool, float]] | None]:
        """Read the subjects' block cells and ``more`` (the detector's) in one round trip, when the cells
        can read ahead; with ``takes``, the rate limits too when the backend holds the buckets (yields
        their results; None when not taken: a live block, or no such backend)."""
        if not isinstance(self._cells, PrefetchCells):
            yield None
            return
        keys = [f"block:{s}" for s in subjects] + list(more)
        with self._cells.prefetched(keys, blocks=len(subjects), takes=takes, now=now) as taken:
            yield taken

    def block(self, subject: str, record_id: int, *, until: float) -> None:
        self._cells.commit([CellWrite(f"block:{subject}", None, f"{record_id} {until!r}".encode())], ttl_s=self._ttl_s)

    def lift(self, record_id: int, subject: str | None) -> None:
        writes = [CellWrite(f"lifted:{record_id}", None, b"1")]
        if subject is not None:
            (cell,) = self._cells.load([f"block:{subject}"])
            if cell.data is not None and int(cell.data.split()[0]) == record_id:  # a newer block stays
                writes.append(CellWrite(f"block:{subject}", cell.version, None))
        self._cells.commit(writes, ttl_s=self._ttl_s)

    def record_once(self, subject: str, record: Callable[[], int], *, ttl_s: float, wait_s: float = 2.0) -> int | None:
        """The one record of ``subject``'s refusal in the deployment: the first worker to claim
        ``refused:<subject>`` calls ``record`` and publishes its id; the others use that id (waiting up to
        ``wait_s`` for it; None if it is not there by then).  A claim whose worker died frees itself after
        ``CLAIM_S``."""
        key = f"refused:{subject}"
        deadline = time.monotonic() + wait_s
        while True:
            (cell,) = self._cells.load([key])
            if cell.data is not None and cell.data != _CLAIMED:
                return int(cell.data)
            if cell.data is None and self._cells.commit([CellWrite(key, cell.version, _CLAIMED)], ttl_s=CLAIM_S):
                try:
                    record_id = record()
                except BaseException:
                    self._cells.commit([CellWrite(key, None, None)], ttl_s=CLAIM_S)
                    raise
                self._cells.commit([CellWrite(key, None, str(record_id).encode())], ttl_s=ttl_s)
                return record_id
            if time.monotonic() > deadline:
                return None
            if cell.data is not None:
                time.sleep(0.005)

    def first_blocked(
        self, subjects: Sequence[str], cached: Sequence[tuple[str, tuple[int, float]]], *, now: float
    ) -> tuple[str, int] | None:
        """The first subject under a live block: on the board, or in ``cached`` (this worker's copy of the
        database) unless lifted.  One round trip."""
        keys = [f"block:{s}" for s in subjects] + [f"lifted:{rid}" for _s, (rid, _u) in cached]
        cells = self._cells.load(keys)
        for subject, cell in zip(subjects, cells, strict=False):
            if cell.data is not None:
                record, until = cell.data.split()
                if now < float(until):
                    return subject, int(record)
        for (subject, (record_id, _until)), lifted in zip(cached, cells[len(subjects) :], strict=True):
            if lifted.data is None:
                return subject, record_id
        return None


__all__ = ["SharedBlocks"]
