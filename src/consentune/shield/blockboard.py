"""Blocks and lifts every worker sees at once, through the shield's shared cells.

The database stays the record (each worker still reloads live blocks from
it every few seconds, which also refills this board after a Redis restart);
the board makes a block decided on one worker stop the subject on all of
them at its next request (no second decision recorded for it), and a lift
on one worker end the block on all of them at once: ``lifted:<record id>``
overrides a worker's cached copy of the database until that copy reloads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

from consentune.shield.cells import CellWrite, PrefetchCells, SharedCells


class SharedBlocks:
    """``block:<subject>`` holds "record_id until"; ``lifted:<record id>`` marks a lift.  Both expire with
    the block."""

    def __init__(self, cells: SharedCells, *, block_s: float) -> None:
        self._cells = cells
        self._ttl_s = block_s

    @contextlib.contextmanager
    def prefetched(self, subjects: Iterable[str], more: Sequence[str]) -> Iterator[None]:
        """Read the subjects' block cells and ``more`` (the detector's) in one round trip, when the cells
        can read ahead."""
        if not isinstance(self._cells, PrefetchCells):
            yield
            return
        with self._cells.prefetched([f"block:{s}" for s in subjects] + list(more)):
            yield

    def block(self, subject: str, record_id: int, *, until: float) -> None:
        self._cells.commit([CellWrite(f"block:{subject}", None, f"{record_id} {until!r}".encode())], ttl_s=self._ttl_s)

    def lift(self, record_id: int, subject: str | None) -> None:
        writes = [CellWrite(f"lifted:{record_id}", None, b"1")]
        if subject is not None:
            (cell,) = self._cells.load([f"block:{subject}"])
            if cell.data is not None and int(cell.data.split()[0]) == record_id:  # a newer block stays
                writes.append(CellWrite(f"block:{subject}", cell.version, None))
        self._cells.commit(writes, ttl_s=self._ttl_s)

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
