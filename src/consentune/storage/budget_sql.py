"""Newcomer budget counters in the SQL database, shared by every worker and host that uses it.

The default when no Redis is configured.  A charge is one write
transaction: the scopes' total rows are created if missing, then locked in a
fixed order (``FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already serialises writers), so two workers never both spend the last
seconds.  Windows that ended are deleted once an hour per process.  Seconds are stored as whole milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, Engine, Table, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from consentune.shield.budget import DAY_HOURS, HOUR_S, VOUCHER_MEMORY_S, BudgetCounter, Charge
from consentune.storage import tables as t
from consentune.storage.engine import is_sqlite, write_transaction


class SqlBudgetCounter(BudgetCounter):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = sqlite.insert if is_sqlite(engine) else postgresql.insert
        self._cleaned_hour = -1
        self._lock = threading.Lock()

    def charge(self, charges: Sequence[Charge], *, track: str, upto_s: float) -> bool:
        upto_ms = round(upto_s * 1000)
        ordered = sorted(charges, key=lambda c: (c.key, c.window))
        with write_transaction(self._engine) as conn:
            self._clean(conn, max(c.window for c in ordered))
            totals = self._locked_totals(conn, ordered)
            seen = self._seen(conn, ordered, track)
            deltas = {(c.key, c.window): max(0, upto_ms - seen.get((c.key, c.window), 0)) for c in ordered}
            if any(deltas[(c.key, c.window)] > 0 and totals[(c.key, c.window)] + deltas[(c.key, c.window)]
                   > c.cap_s * 1000 for c in ordered):  # fmt: skip
                return False
            for (key, window), delta in deltas.items():
                if delta > 0:
                    self._record(conn, key, window, track, upto_ms, delta, known=(key, window) in seen)
            return True

    def vouch(self, keys: Sequence[str], *, member: str, now: float) -> None:
        v = t.shield_vouchers
        seen_us = round(now * 1e6)
        with write_transaction(self._engine) as conn:
            for key in keys:
                statement = self._insert(v).values(scope=key, member=member[:48], seen_us=seen_us)
                conn.execute(statement.on_conflict_do_update(index_elements=["scope", "member"],
                                                             set_={"seen_us": seen_us}))  # fmt: skip

    def vouchers(self, keys: Sequence[str], *, now: float) -> list[int]:
        v = t.shield_vouchers
        since = round((now - VOUCHER_MEMORY_S) * 1e6)
        query = (
            select(v.c.scope, func.count())
            .where(and_(v.c.scope.in_(list(keys)), v.c.seen_us >= since))
            .group_by(v.c.scope)
        )
        with self._engine.connect() as conn:
            counts = {str(scope): int(n) for scope, n in conn.execute(query)}
        return [counts.get(k, 0) for k in keys]

    def _locked_totals(self, conn: Connection, charges: Sequence[Charge]) -> dict[tuple[str, int], int]:
        tot = t.shield_budget_totals
        for c in charges:
            conn.execute(self._insert(tot).values(scope=c.key, hour=c.window, total_ms=0).on_conflict_do_nothing())
        query = select(tot.c.scope, tot.c.hour, tot.c.total_ms).where(_any_of(tot, charges))
        query = query.order_by(tot.c.scope, tot.c.hour).with_for_update()
        return {(str(scope), int(window)): int(total) for scope, window, total in conn.execute(query)}

    def _seen(self, conn: Connection, charges: Sequence[Charge], track: str) -> dict[tuple[str, int], int]:
        s = t.shield_budget_seen
        query = select(s.c.scope, s.c.hour, s.c.upto_ms).where(and_(_any_of(s, charges), s.c.track == track))
        return {(str(scope), int(window)): int(upto) for scope, window, upto in conn.execute(query)}

    def _record(
        self, conn: Connection, key: str, hour: int, track: str, upto_ms: int, delta: int, *, known: bool
    ) -> None:
        s, tot = t.shield_budget_seen, t.shield_budget_totals
        if known:
            conn.execute(update(s).where(and_(s.c.scope == key, s.c.hour == hour, s.c.track == track))
                         .values(upto_ms=upto_ms))  # fmt: skip
        else:
            conn.execute(self._insert(s).values(scope=key, hour=hour, track=track, upto_ms=upto_ms))
        conn.execute(update(tot).where(and_(tot.c.scope == key, tot.c.hour == hour))
                     .values(total_ms=tot.c.total_ms + delta))  # fmt: skip

    def _clean(self, conn: Connection, hour: int) -> None:
        """Drop windows that ended (the longest is a day) once an hour per process."""
        with self._lock:
            if self._cleaned_hour == hour:
                return
            self._cleaned_hour = hour
        oldest = hour - DAY_HOURS - 1
        conn.execute(delete(t.shield_budget_seen).where(t.shield_budget_seen.c.hour < oldest))
        conn.execute(delete(t.shield_budget_totals).where(t.shield_budget_totals.c.hour < oldest))
        cutoff = round((oldest * HOUR_S - VOUCHER_MEMORY_S) * 1e6)  # vouchers older than a day (the hour is UTC)
        conn.execute(delete(t.shield_vouchers).where(t.shield_vouchers.c.seen_us < cutoff))


def _any_of(table: Table, charges: Sequence[Charge]) -> ColumnElement[bool]:
    return or_(*(and_(table.c.scope == c.key, table.c.hour == c.window) for c in charges))


__all__ = ["SqlBudgetCounter"]
