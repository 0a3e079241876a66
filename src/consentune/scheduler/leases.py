"""Leases in the database: a leader lease with expiry, and per-job due times.

Plain ``UPDATE ... WHERE`` and ``INSERT`` (a primary-key clash means someone
else won), so it works the same on SQLite and PostgreSQL.  Times are the
workers' wall clocks in microseconds: machines must agree to well within a
lease's TTL (NTP does).
"""

from __future__ import annotations

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from consentune.storage.tables import leases


class SqlLeases:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def acquire(self, name: str, *, holder: str, ttl_s: float, now_us: int) -> bool:
        """Take or renew ``name`` until ``now + ttl``; False if another holder's lease has not expired."""
        until = now_us + round(ttl_s * 1e6)
        row = leases.c
        with self._engine.begin() as conn:
            taken = conn.execute(
                update(leases)
                .where(row.name == name, or_(row.holder == holder, row.until_us <= now_us))
                .values(holder=holder, until_us=until)
            ).rowcount
        return bool(taken) or self._insert(name, holder, until)

    def release(self, name: str, *, holder: str) -> None:
        """Give ``name`` up now (on shutdown), if ``holder`` still has it."""
        with self._engine.begin() as conn:
            conn.execute(update(leases).where(leases.c.name == name, leases.c.holder == holder).values(until_us=0))

    def claim_due(self, job: str, *, holder: str, period_s: float, now_us: int) -> int | None:
        """Claim ``job``'s run if it is due; return the due time claimed (µs), or None.

        The claim moves the due time to ``now + period`` in the same statement
        that checks it, so of all workers trying at once exactly one wins each
        period, whoever the leader is.
        """
        row = leases.c
        until = now_us + round(period_s * 1e6)
        with self._engine.begin() as conn:
            due = conn.execute(select(row.until_us).where(row.name == job)).scalar_one_or_none()
            if due is not None:
                if due > now_us:
                    return None
                won = conn.execute(
                    update(leases)
                    .where(and_(row.name == job, row.until_us == due))
                    .values(holder=holder, until_us=until)
                ).rowcount
                return int(due) if won else None
        return now_us if self._insert(job, holder, until) else None

    def holder(self, name: str, *, now_us: int) -> str | None:
        """Who holds ``name`` now (None: nobody, or the lease expired)."""
        with self._engine.connect() as conn:
            found = conn.execute(select(leases.c.holder, leases.c.until_us).where(leases.c.name == name)).first()
        return None if found is None or found.until_us <= now_us else str(found.holder)

    def _insert(self, name: str, holder: str, until: int) -> bool:
        try:
            with self._engine.begin() as conn:
                conn.execute(insert(leases).values(name=name, holder=holder, until_us=until))
        except IntegrityError:
            return False
        return True


__all__ = ["SqlLeases"]
