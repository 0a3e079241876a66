"""Claims and claim policies on SQLite and PostgreSQL (the :class:`~consentune.ports.ClaimRepo` port)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from consentune.claims.model import Claim, ClaimPolicy, ClaimStatus
from consentune.storage import tables as t
from consentune.storage.sql import SqlStore
from consentune.storage.timeutil import from_us, to_us
from consentune.types import ArtistId, TrackId

_CHUNK = 500


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class SqlClaims:
    """Joins the store's units of work; every write moves the consent version (claims change decisions)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def add_claims(self, claims: Sequence[Claim]) -> list[Claim]:
        """Store new claims; a pair that already has a claim keeps it (its state is not reset)."""
        c = t.claims
        out: list[Claim] = []
        with self._store.transaction():
            for claim in claims:
                try:
                    with self._store._attempt() as conn:
                        result = conn.execute(insert(c).values(**_values(claim)))
                        new_id = int(result.inserted_primary_key[0])  # type: ignore[index]
                except IntegrityError:
                    continue
                out.append(_with_id(claim, new_id))
            if out:
                self._store.begin_consent_change()
                with self._store._write() as conn:
                    _touch(conn, {c.copy_artist_id for c in out})
        return out

    def claim(self, claim_id: int) -> Claim | None:
        with self._store._read() as conn:
            row = conn.execute(select(t.claims).where(t.claims.c.id == claim_id)).first()
        return _claim(row) if row is not None else None

    def governing_claims(self, copies: Sequence[TrackId]) -> dict[TrackId, list[Claim]]:
        c = t.claims
        out: dict[TrackId, list[Claim]] = {}
        governing = [s.value for s in ClaimStatus if s.governs]
        with self._store._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(copies))):
                rows = conn.execute(select(c).where(c.c.copy_track_id.in_(chunk), c.c.status.in_(governing)))
                for row in rows:
                    claim = _claim(row)
                    out.setdefault(claim.copy_track_id, []).append(claim)
        return out

    def move_claim(
        self,
        claim_id: int,
        *,
        expect: Sequence[ClaimStatus],
        to: ClaimStatus,
        at: datetime,
        by: str,
        reason: str | None,
    ) -> Claim | None:
        """Compare-and-set: move the claim only if it is still in one of ``expect`` (two reviewers cannot race)."""
        c = t.claims
        values: dict[str, Any] = {"status": to.value, "updated_us": to_us(at)}
        if to is ClaimStatus.DISPUTED:
            values["dispute_reason"] = reason
        else:
            values["resolved_by"] = by
        with self._store.transaction():
            self._store.begin_consent_change()
            with self._store._write() as conn:
                moved = conn.execute(
                    update(c).where(c.c.id == claim_id, c.c.status.in_([s.value for s in expect])).values(**values)
                ).rowcount
                copier = conn.execute(select(c.c.copy_artist_id).where(c.c.id == claim_id)).scalar()
                _touch(conn, {copier} if copier else set())
            return self.claim(claim_id) if moved else None

    def list_claims(
        self,
        *,
        artist_id: ArtistId | None,
        status: ClaimStatus | None,
        limit: int,
        offset: int,
        track_id: TrackId | None = None,
    ) -> list[Claim]:
        c = t.claims
        query = select(c)
        if track_id is not None:
            query = query.where(or_(c.c.copy_track_id == track_id, c.c.original_track_id == track_id))
        if artist_id is not None:
            query = query.where(or_(c.c.copy_artist_id == artist_id, c.c.original_artist_id == artist_id))
        if status is not None:
            query = query.where(c.c.status == status.value)
        with self._store._read() as conn:
            rows = conn.execute(query.order_by(c.c.updated_us.desc(), c.c.id.desc()).limit(limit).offset(offset))
            return [_claim(r) for r in rows]

    def claim_policies(self, artist_ids: Sequence[ArtistId]) -> dict[ArtistId, ClaimPolicy]:
        p = t.claim_policies
        out: dict[ArtistId, ClaimPolicy] = {}
        with self._store._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(artist_ids))):
                rows = conn.execute(select(p.c.artist_id, p.c.policy).where(p.c.artist_id.in_(chunk)))
                out.update({ArtistId(a): ClaimPolicy(v) for a, v in rows})
        return out

    def set_claim_policy(self, artist_id: ArtistId, policy: ClaimPolicy, at: datetime) -> None:
        p = t.claim_policies
        with self._store.transaction():
            self._store.begin_consent_change()
            with self._store._write() as conn:
                copiers = conn.execute(
                    select(t.claims.c.copy_artist_id).where(t.claims.c.original_artist_id == artist_id)
                )
                _touch(conn, {a for (a,) in copiers})
                conn.execute(delete(p).where(p.c.artist_id == artist_id))
                conn.execute(insert(p).values(artist_id=artist_id, policy=policy.value, updated_us=to_us(at)))


def _touch(conn: Connection, artist_ids: set[str]) -> None:
    """Move these artists' consent counters: their tracks' cached decisions (listener policy) go stale."""
    if artist_ids:
        a = t.artists
        conn.execute(update(a).where(a.c.id.in_(sorted(artist_ids))).values(consent_version=a.c.consent_version + 1))


def _values(claim: Claim) -> dict[str, Any]:
    return {
        "copy_track_id": claim.copy_track_id,
        "original_track_id": claim.original_track_id,
        "copy_artist_id": claim.copy_artist_id,
        "original_artist_id": claim.original_artist_id,
        "status": claim.status.value,
        "score": claim.score,
        "copy_start_s": claim.copy_start_s,
        "copy_end_s": claim.copy_end_s,
        "original_start_s": claim.original_start_s,
        "original_end_s": claim.original_end_s,
        "time_scale": claim.time_scale,
        "pitch_semitones": claim.pitch_semitones,
        "partial": claim.partial,
        "dispute_reason": claim.dispute_reason,
        "resolved_by": claim.resolved_by,
        "opened_us": to_us(claim.opened_at),
        "updated_us": to_us(claim.updated_at),
    }


def _with_id(claim: Claim, new_id: int) -> Claim:
    return replace(claim, id=new_id)


def _claim(row: Any) -> Claim:
    return Claim(
        id=int(row.id),
        copy_track_id=TrackId(row.copy_track_id),
        original_track_id=TrackId(row.original_track_id),
        copy_artist_id=ArtistId(row.copy_artist_id),
        original_artist_id=ArtistId(row.original_artist_id),
        status=ClaimStatus(row.status),
        score=float(row.score),
        copy_start_s=float(row.copy_start_s),
        copy_end_s=float(row.copy_end_s),
        original_start_s=float(row.original_start_s),
        original_end_s=float(row.original_end_s),
        time_scale=float(row.time_scale),
        pitch_semitones=float(row.pitch_semitones),
        partial=bool(row.partial),
        opened_at=from_us(row.opened_us),
        updated_at=from_us(row.updated_us),
        dispute_reason=row.dispute_reason,
        resolved_by=row.resolved_by,
    )


__all__ = ["SqlClaims"]
