"""The scraper detector with its subjects in shared cells: W workers judge one picture of each scraper.

Each event touches at most four subjects (session, account, address,
network prefix; :func:`~consentune.shield.detect.subject_keys`).  The worker
loads those cells, runs the very same detector code on them, and commits
them back only if no other worker changed one meanwhile; on a lost race it
starts over from the new state.  So the state is exact, as if one worker
had seen every event in commit order.  After ``attempts`` lost races in a
row (one very hot address) the last write wins: that event's update may
overwrite a concurrent one (an approximation; counted in ``stats()``).

Lockdowns live in address and prefix subjects, so they are shared too; a
lift finds the pools a blocked identity locked down through a small link
cell (``lockdown-by:<subject>``) instead of scanning every subject.

The event and verdict counts ride on the same commit (``detector.<name>``
counters of the cell store), so ``stats()`` on any worker tells the whole
deployment's.  A worker keeps the subjects it committed last with the bytes
it wrote; a cell still holding those bytes is not decoded again (with
sticky load balancing most are not; the bytes are compared, not versions,
so a cell deleted or expired and written again is never mistaken for it).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence

from consentune.shield.cells import CellWrite, SharedCells, update_cell
from consentune.shield.detect import (
    AccessEvent,
    DetectorConfig,
    ScraperDetector,
    Verdict,
    _release_lockdown,
    _Subject,
    subject_keys,
)
from consentune.shield.subjectcodec import decode_subject, encode_subject

SUBJECT = "det:"
LINK = "lockdown-by:"
COUNTER = "detector."  # counters shared through the cells' commits


class SharedScraperDetector(ScraperDetector):
    """:class:`ScraperDetector` whose subjects live in ``cells`` (Redis or a file), not in this process."""

    def __init__(
        self,
        cells: SharedCells,
        config: DetectorConfig | None = None,
        *,
        crawler_tokens: Sequence[str] = (),
        attempts: int = 8,
        decoded_subjects: int = 4096,
    ) -> None:
        super().__init__(config, crawler_tokens=crawler_tokens)
        self._cells = cells
        self._attempts = attempts
        c = self.config
        self._ttl_s = max(c.idle_forget_s, c.block_s, c.lockdown_s)  # a blocked subject outlives its block
        self._decoded = _DecodedSubjects(decoded_subjects)

    def observe(self, event: AccessEvent) -> Verdict:
        keys = subject_keys(event)
        for attempt in range(self._attempts):
            last = attempt == self._attempts - 1
            verdict = self._try(event, keys, unconditional=last, conflicts=attempt)
            if verdict is not None:
                return verdict
        raise AssertionError("unreachable: the last attempt commits unconditionally")

    def _try(self, event: AccessEvent, keys: list[str], *, unconditional: bool, conflicts: int) -> Verdict | None:
        cells = self._cells.load([SUBJECT + k for k in keys])  # the guard may have read these ahead
        loaded = [(k, self._decoded.take(k, c.data) or decode_subject(c.data))
                  for k, c in zip(keys, cells, strict=True) if c.data is not None]  # fmt: skip
        table = OrderedDict(sorted(loaded, key=lambda pair: pair[1].last_seen))  # oldest first, as in memory
        sources_before = {k: set(s.lockdown_sources) for k, s in table.items()}
        with self._lock:
            before, trust_before = dict(self._counts), self._trust_changes
            self._trust_changes = []
            verdict = self._observe(event, table)
            trust, self._trust_changes = self._trust_changes, trust_before
            counted = {name: self._counts[name] - n for name, n in before.items()}
            self._counts.update(before)  # counted deployment-wide, with the commit below
        writes = [
            CellWrite(SUBJECT + k, None if unconditional else c.version, _encoded(table.get(k)))
            for k, c in zip(keys, cells, strict=True)
        ]
        counted.update(conflicts=conflicts, last_write_wins=int(unconditional))
        if not self._cells.commit(writes, ttl_s=self._ttl_s, counts={COUNTER + n: v for n, v in counted.items()}):
            return None  # judged again on fresh state; this attempt counts nothing
        with self._lock:
            self._trust_changes.extend(trust)
        for key, write in zip(keys, writes, strict=True):
            subject = table.get(key)
            if subject is not None and write.data is not None:
                self._decoded.keep(key, write.data, subject)
        for key, subject in table.items():
            for source in subject.lockdown_sources - sources_before.get(key, set()):
                self._link(source, key)
        return verdict

    def _link(self, source: str, pool: str) -> None:
        def add(data: bytes | None) -> bytes:
            pools = set(json.loads(data)) if data else set()
            return json.dumps(sorted(pools | {pool})).encode()

        update_cell(self._cells, LINK + source, add, ttl_s=self._ttl_s)

    def forgive(self, subject: str) -> None:
        """Every worker forgets ``subject`` and ends the lockdowns only its block caused."""
        (link,) = self._cells.load([LINK + subject])
        for pool in json.loads(link.data) if link.data else []:
            update_cell(self._cells, SUBJECT + pool, lambda data: _released(data, subject), ttl_s=self._ttl_s)
        self._cells.commit([CellWrite(SUBJECT + subject, None, None), CellWrite(LINK + subject, None, None)],
                           ttl_s=self._ttl_s)  # fmt: skip

    def forget_before(self, t: float) -> int:
        """Nothing to sweep here: shared cells expire by themselves (``idle_forget_s`` after their last event)."""
        return 0

    def stats(self) -> dict[str, int]:
        """Event and verdict counts, lost races and last-write-wins commits of every worker sharing the
        cells (subjects are counted by the shared store, not here)."""
        names = (*self._counts, "conflicts", "last_write_wins")
        counted = self._cells.counters()
        return {name: counted.get(COUNTER + name, 0) for name in names}


class _DecodedSubjects:
    """Subjects this worker committed last, with the bytes it wrote: a cell still holding those bytes
    needs no decoding.  A subject is handed out once (the detector changes it in place) and kept again
    only after its commit succeeded, so a lost race never leaves a changed copy behind."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, tuple[bytes, _Subject]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, data: bytes | None) -> _Subject | None:
        with self._lock:
            kept = self._items.pop(key, None)
        return kept[1] if kept is not None and kept[0] == data else None

    def keep(self, key: str, data: bytes, subject: _Subject) -> None:
        if self._capacity < 1:
            return
        with self._lock:
            self._items[key] = (data, subject)
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)


def cell_keys(event: AccessEvent) -> list[str]:
    """The cells :meth:`SharedScraperDetector.observe` reads first for ``event`` (to read them ahead)."""
    return [SUBJECT + k for k in subject_keys(event)]


def _encoded(subject: _Subject | None) -> bytes | None:
    return None if subject is None else encode_subject(subject)


def _released(data: bytes | None, source: str) -> bytes | None:
    if data is None:
        return None
    pool = decode_subject(data)
    _release_lockdown(pool, source)
    return encode_subject(pool)


__all__ = ["SharedScraperDetector", "cell_keys"]
