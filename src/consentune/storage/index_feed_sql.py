"""The shared fingerprint index's feed in the SQL database: positions in commit order.

A reader that has applied position 11 never looks at 10 again, so a change
must never become visible after a later one: publishers take one
transaction-scoped lock on PostgreSQL (SQLite serialises writers already),
so positions commit in order.  Publishing is per indexing batch, not per
play, so the lock is not on a hot path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Engine, insert, select

from consentune.storage import tables as t
from consentune.storage.engine import is_sqlite, write_transaction

_FEED_LOCK = 0x1D_FEED  # pg_advisory_xact_lock key of the index feed's publishers


class SqlIndexFeedRows:
    """Rows of (position, track, removed); the artifact adapter pairs them with the published postings."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def append(self, changes: Sequence[tuple[str, bool]]) -> None:
        """Append (track id, removed) rows in order, in one transaction."""
        if not changes:
            return
        at_us = time.time_ns() // 1000
        with write_transaction(self._engine) as conn:
            if not is_sqlite(self._engine):
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_FEED_LOCK})")
            conn.execute(
                insert(t.index_feed),
                [{"track_id": track, "removed": removed, "at_us": at_us} for track, removed in changes],
            )

    def read(self, after: int, limit: int) -> list[tuple[int, str, bool]]:
        f = t.index_feed
        query = select(f.c.seq, f.c.track_id, f.c.removed).where(f.c.seq > after).order_by(f.c.seq).limit(limit)
        with self._engine.connect() as conn:
            return [(int(seq), str(track), bool(removed)) for seq, track, removed in conn.execute(query)]


__all__ = ["SqlIndexFeedRows"]
