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
"""

from __future__ import annotations

import json
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


class SharedScraperDetector(ScraperDetector):
    """:class:`ScraperDetector` whose subjects live in ``cells`` (Redis or a file), not in this process."""

    def __init__(
        self,
        cells: SharedCells,
        config: DetectorConfig | None = None,
        *,
        crawler_tokens: Sequence[str] = (),
        attempts: int = 8,
    ) -> None:
        super().__init__(config, crawler_tokens=crawler_tokens)
        self._cells = cells
        self._attempts = attempts
        c = self.config
        self._ttl_s = max(c.idle_forget_s, c.block_s, c.lockdown_s)  # a blocked subject outlives its block
        self._counts.update(conflicts=0, last_write_wins=0)

    def observe(self, event: AccessEvent) -> Verdict:
        keys = subject_keys(event)
        for attempt in range(self._attempts):
            last = attempt == self._attempts - 1
            verdict = self._try(event, keys, unconditional=last)
            if verdict is not None:
                return verdict
        raise AssertionError("unreachable: the last attempt commits unconditionally")

    def _try(self, event: AccessEvent, keys: list[str], *, unconditional: bool) -> Verdict | None:
        cells = self._cells.load([SUBJECT + k for k in keys])  # the guard may have read these ahead
        loaded = [(k, decode_subject(c.data)) for k, c in zip(keys, cells, strict=True) if c.data is not None]
        table = OrderedDict(sorted(loaded, key=lambda pair: pair[1].last_seen))  # oldest first, as in memory
        sources_before = {k: set(s.lockdown_sources) for k, s in table.items()}
        with self._lock:
            before, trust_before = dict(self._counts), self._trust_changes
            self._trust_changes = []
            verdict = self._observe(event, table)
            trust, self._trust_changes = self._trust_changes, trust_before
            counted = {name: self._counts[name] - n for name, n in before.items()}
        writes = [
            CellWrite(SUBJECT + k, None if unconditional else c.version, _encoded(table.get(k)))
            for k, c in zip(keys, cells, strict=True)
        ]
        if not self._cells.commit(writes, ttl_s=self._ttl_s):
            with self._lock:  # undo this attempt's counts; the event is judged again on fresh state
                for name, n in counted.items():
                    self._counts[name] -= n
                self._counts["conflicts"] += 1
            return None
        with self._lock:
            self._trust_changes.extend(trust)
            self._counts["last_write_wins"] += unconditional
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
        """This worker's event and verdict counts and lost races; subjects are counted by the shared store."""
        with self._lock:
            return dict(self._counts)


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
