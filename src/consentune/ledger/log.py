"""UsageLedger: the append-only log service on top of a storage port.

An append only queues its records (one INSERT, no log-wide lock); the
integrator gives queued batches their sequence numbers, extends the tree,
signs a checkpoint and publishes tlog-tiles.  Readers that need an index
(receipts, timelines, ``size``) integrate first.  ``audit`` checks from the
last audited checkpoint; ``audit(full=True)`` recomputes everything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from consentune.errors import ConsentuneError, InvalidInput, NotFound
from consentune.ledger.audit import AuditReport, audit_incremental, audit_row
from consentune.ledger.checkpoint import Checkpoint, LogSigner, parse_checkpoint_body, verify_checkpoint
from consentune.ledger.entry import LedgerEntry, utc_timestamp
from consentune.ledger.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    multiproof,
    node_hash,
)
from consentune.ledger.receipt import build_receipt, build_receipt_page
from consentune.ledger.sequencer import LedgerTicket, encode_batch, plan_integration
from consentune.ledger.tiles import CHECKPOINT_PATH, TILE_WIDTH, CachedSource, RecentEntries, TileStore, publish
from consentune.observe import NULL_OBSERVER, Observer
from consentune.ports import LedgerRepo, StoredCheckpoint


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """What a caller logs; the ledger adds sequence number and time."""

    actor: str
    action: str
    purpose: str | None
    track: str | None
    decision: str
    reason: str
    terms_version: int | None = None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch (UTC)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _compact(state: bytes) -> CompactRange:
    return CompactRange.from_bytes(state) if state else CompactRange()


class UsageLedger:
    """The append-only log: queued appends, batched integration, checkpoints, proofs, receipts, audit."""

    def __init__(
        self,
        repo: LedgerRepo,
        signer: LogSigner,
        *,
        origin: str,
        clock: Callable[[], datetime] = _utcnow,
        tiles: TileStore | None = None,
        integrate_batch: int = 20_000,
        observer: Observer = NULL_OBSERVER,
    ) -> None:
        self._repo = repo
        self._observer = observer
        self._signer = signer
        self.origin = origin
        self._clock = clock
        self._tiles = tiles
        self._integrate_batch = integrate_batch
        self._recent = RecentEntries()  # what this process integrated last: publishing need not read it back

    @property
    def verifier_key(self) -> str:
        return self._signer.verifier_key()

    @property
    def tiles(self) -> TileStore | None:
        """Where the log is published as tlog-tiles (None: not published)."""
        return self._tiles

    @property
    def size(self) -> int:
        """Entries in the log once everything acknowledged so far is integrated."""
        return self.integrate()

    @property
    def integrated_size(self) -> int:
        """Entries already integrated, without integrating anything (cheap; may lag appends)."""
        return self._repo.ledger_head()[0]

    def append(self, records: Sequence[UsageRecord], *, unit: object | None = None) -> LedgerTicket:
        """Durably queue ``records``; they get consecutive sequence numbers when integrated.

        This is the request path: one INSERT, no log-wide lock.  Pass ``unit``
        (the storage adapter's open transaction) to make the entries commit or
        roll back together with the caller's own state change.

        Raises
        ------
        InvalidInput
            If a record would not make a valid entry (checked here, before queueing).
        """
        if not records:
            return LedgerTicket(-1, 0)
        now = self._clock()
        stamp = utc_timestamp(now)
        payload = encode_batch(
            stamp,
            [(r.actor, r.action, r.purpose, r.track, r.decision, r.reason, r.terms_version) for r in records],
        )
        started = time.perf_counter()
        batch_id = self._repo.enqueue(_epoch_us(now), len(records), payload, unit=unit)
        self._observer.ledger_appended(entries=len(records), seconds=time.perf_counter() - started)
        return LedgerTicket(batch_id, len(records))

    def sequences(self, ticket: LedgerTicket) -> range:
        """The sequence numbers ``ticket``'s records received, integrating first if they are still queued."""
        if ticket.count == 0:
            return range(0)
        found = self._repo.batch_range(ticket.batch_id)
        if found is None:
            self.integrate()
            found = self._repo.batch_range(ticket.batch_id)
        if found is None:
            raise NotFound(
                f"ledger batch {ticket.batch_id} is neither queued nor integrated",
                hint="the append was rolled back with its transaction, or belongs to another database",
            )
        first, count = found
        if ticket.offset + ticket.count > count:
            raise NotFound(
                f"ledger batch {ticket.batch_id} holds {count} records, not {ticket.offset + ticket.count}",
                hint="the ticket belongs to another database",
            )
        return range(first + ticket.offset, first + ticket.offset + ticket.count)

    def append_once(self, records: Sequence[UsageRecord], *, key: str) -> tuple[LedgerTicket, bool]:
        """Append ``records`` unless a batch with ``key`` was appended before.

        Returns the batch's ticket (the first batch's, when ``key`` was seen
        before) and whether this call queued it; a retried batch job passes the
        same key and logs nothing twice.  Like :meth:`append`, it does not wait
        for integration: :meth:`sequences` resolves the ticket when asked.
        """
        if not key or len(key) > 160:
            raise InvalidInput(f"ledger batch key {key[:40]!r} is empty or too long", hint="use at most 160 characters")
        if not records:
            return LedgerTicket(0, 0), False
        now = self._clock()
        payload = encode_batch(
            utc_timestamp(now),
            [(r.actor, r.action, r.purpose, r.track, r.decision, r.reason, r.terms_version) for r in records],
        )
        batch_id, fresh = self._repo.enqueue_once(key, _epoch_us(now), len(records), payload)
        if fresh:
            self._observer.ledger_appended(entries=len(records), seconds=0.0)
        return LedgerTicket(batch_id, len(records)), fresh

    def integrate(self, *, wait: bool = True) -> int:
        """Integrate every batch queued before this call, then sign a checkpoint and publish tiles.

        Returns the log size.  Batches queued while it runs may be integrated
        too, but are not waited for, so a steady stream of appends cannot keep
        a reader (or the background integrator) busy forever.

        With ``wait=False`` return at once if another integrator (any process or
        host) holds the lock; it integrates the queue in our place.
        """
        grew = False
        up_to = self._repo.last_queued()  # what is acknowledged now; later appends wait for the next round
        while up_to >= 0:
            plan = self._repo.integrate(plan_integration, wait=wait, max_entries=self._integrate_batch, up_to=up_to)
            if plan is None:
                return self._repo.ledger_head()[0]
            grew = grew or bool(plan.rows)
            if plan.rows and self._tiles is not None:
                self._recent.add(plan.old_size, plan.rows)
            if plan.new_size == plan.old_size:
                break
        size = self._repo.ledger_head()[0]
        self._observer.ledger_integrated(size=size)
        if grew or self._published_size() < size:
            self._publish(self._sign(size))
        return size

    def _sign(self, size: int) -> StoredCheckpoint:
        """Sign (and store) a checkpoint at the current head unless one exists for its size."""
        head_size, state = self._repo.ledger_head()
        existing = self._repo.checkpoint_at(head_size)
        if existing is not None:
            return existing
        root = _compact(state).root()
        note = self._signer.sign_checkpoint(Checkpoint(self.origin, head_size, root))
        stored = StoredCheckpoint(head_size, root, note, self._clock())
        self._repo.add_checkpoint(stored)
        return stored

    def _published_size(self) -> int:
        if self._tiles is None:
            return 2**63
        data = self._tiles.read(CHECKPOINT_PATH)
        if data is None:
            return 0
        try:
            return parse_checkpoint_body(data.decode("utf-8").partition("\n\n")[0] + "\n").size
        except (ConsentuneError, UnicodeDecodeError):
            return 0

    def _publish(self, cp: StoredCheckpoint) -> None:
        if self._tiles is None:
            return
        published = self._published_size()
        if published >= cp.size:
            return  # another integrator already published this size or a later one
        source = CachedSource(self._repo, self._recent)
        publish(self._tiles, source, old_size=published, new_size=cp.size, checkpoint_note=cp.note)
        self._recent.keep_from(cp.size - cp.size % TILE_WIDTH)  # the partial tile's entries are published again

    def checkpoint(self, *, max_age_s: float = 0.0) -> StoredCheckpoint:
        """A checkpoint covering everything acknowledged so far (integrating first).

        ``max_age_s`` lets public callers reuse a recent checkpoint instead of
        integrating on their request while the log grows.
        """
        latest = self._repo.latest_checkpoint()
        if latest is not None and (self._clock() - latest.created_at).total_seconds() < max_age_s:
            return latest
        size = self.integrate()
        latest = self._repo.latest_checkpoint()
        if latest is not None and latest.size >= size:
            return latest
        return self._sign(size)

    def entries(self, seqs: Sequence[int]) -> list[LedgerEntry]:
        return [LedgerEntry.from_bytes(r.data) for r in self._repo.ledger_rows(seqs)]

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        return inclusion_proof(seq, size, self._repo)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Proof that tree ``new_size`` extends tree ``old_size``; both must be checkpointed sizes' range."""
        size = self.integrated_size
        if not 0 < old_size <= new_size <= size:
            raise InvalidInput(
                f"sizes old={old_size}, new={new_size} are not within 1..{size} with old <= new",
                hint="ask between two checkpoints you hold; GET /v1/ledger/checkpoint gives the latest size",
            )
        return consistency_proof(old_size, new_size, self._repo)

    def track_entries(self, *, track: str, purpose: str | None = None, limit: int = 200) -> list[LedgerEntry]:
        """The latest ``limit`` entries about ``track`` (optionally one purpose), oldest first."""
        self.integrate()
        seqs = self._repo.track_ledger_seqs(track, purpose, limit=limit)  # type: ignore[arg-type]
        return self.entries(seqs)

    def recent_checkpoints(self, *, limit: int = 50) -> list[StoredCheckpoint]:
        """The ``limit`` most recent signed checkpoints, newest first."""
        return self._repo.list_checkpoints(limit=limit, newest_first=True)

    def receipt(
        self,
        *,
        track: str,
        purpose: str | None = None,
        after: int = -1,
        limit: int = 10_000,
        size: int | None = None,
    ) -> bytes:
        """One ``consentune-receipt/v2`` page: the first ``limit`` entries about ``track`` after ``after``.

        ``size`` picks the checkpoint (default: a fresh one, integrating first);
        pass the first page's size and its ``page.next`` as ``after`` to get the
        following pages against the same checkpoint, until ``page.next`` is null.

        Raises
        ------
        NotFound
            If no checkpoint has that size, or there are no such entries.
        """
        cp = self._checkpoint_of(size)
        seqs = self._repo.track_ledger_seqs(
            track,  # type: ignore[arg-type]
            purpose,  # type: ignore[arg-type]
            limit=max(1, limit) + 1,
            after=after,
            before=cp.size,
        )
        if not seqs:
            raise NotFound(
                f"the ledger has no entries for track {track}"
                + (f" and purpose {purpose}" if purpose else "")
                + (f" after {after}" if after >= 0 else ""),
                hint="check the track id; entries appear once the track is ingested or used",
            )
        more, seqs = len(seqs) > limit, seqs[: max(1, limit)]
        return build_receipt_page(
            subject_track=track,
            subject_purpose=purpose,
            entries=self.entries(seqs),
            proof=multiproof(seqs, cp.size, self._repo),
            checkpoint_note=cp.note,
            after=after,
            more=more,
        )

    def receipt_v1(self, *, track: str, purpose: str | None = None, limit: int = 10_000) -> bytes:
        """A ``consentune-receipt/v1``: the latest ``limit`` entries, each with its own inclusion proof.

        The dashboard's in-browser verifier reads this format; complete receipts page with :meth:`receipt`.
        """
        cp = self._checkpoint_of(None)
        latest = self._repo.track_ledger_seqs(track, purpose, limit=max(1, limit))  # type: ignore[arg-type]
        seqs = [s for s in latest if s < cp.size]
        if not seqs:
            raise NotFound(
                f"the ledger has no entries for track {track}" + (f" and purpose {purpose}" if purpose else ""),
                hint="check the track id; entries appear once the track is ingested or used",
            )
        proven = [(e, inclusion_proof(e.sequence, cp.size, self._repo)) for e in self.entries(seqs)]
        return build_receipt(subject_track=track, subject_purpose=purpose, entries=proven, checkpoint_note=cp.note)

    def receipt_pages(self, *, track: str, purpose: str | None = None, page_size: int = 10_000) -> Iterator[bytes]:
        """Every page of the complete receipt about ``track``, all against one checkpoint."""
        size = self.checkpoint().size
        after = -1
        while True:
            page = self.receipt(track=track, purpose=purpose, after=after, limit=page_size, size=size)
            yield page
            cursor = json.loads(page)["page"]["next"]
            if cursor is None:
                return
            after = int(cursor)

    def _checkpoint_of(self, size: int | None) -> StoredCheckpoint:
        if size is None:
            return self.checkpoint()
        cp = self._repo.checkpoint_at(size)
        if cp is None:
            raise NotFound(f"no checkpoint has size {size}", hint="pass the size of the first page's checkpoint")
        return cp

    def audit(self, *, full: bool = False) -> AuditReport:
        """Check the log: from the last audited checkpoint (default) or everything (``full``)."""
        self.integrate()
        if full:
            return self._audit_full()
        return audit_incremental(self._repo, self.verifier_key, tiles=self._tiles)

    def _audit_full(self) -> AuditReport:
        """Recompute leaves, nodes, head and every checkpoint from the stored entries."""
        report = AuditReport()
        compact = CompactRange()
        checkpoints = sorted(self._repo.list_checkpoints(), key=lambda c: c.size)
        pending = list(reversed(checkpoints))
        levels: list[bytearray] = [bytearray()]
        self._check_checkpoint_at(0, compact, pending, report)
        for batch in self._repo.iter_ledger():
            for row in batch:
                audit_row(row.seq, row.data, row.leaf_hash, compact, report)
                levels[0] += leaf_hash(row.data)
                self._check_checkpoint_at(compact.size, compact, pending, report)
        report.size = report.entries_checked = compact.size
        self._audit_head(compact, report)
        self._audit_nodes(levels, report)
        for cp in pending:
            report.problem(f"checkpoint at size {cp.size} is beyond the {compact.size} stored entries")
        report.checkpoints_checked = len(checkpoints)
        return report

    def _check_checkpoint_at(
        self, size: int, compact: CompactRange, pending: list[StoredCheckpoint], report: AuditReport
    ) -> None:
        while pending and pending[-1].size == size:
            cp = pending.pop()
            try:
                parsed = verify_checkpoint(cp.note, self.verifier_key)
            except ConsentuneError as exc:
                report.problem(f"checkpoint {cp.size}: signature check failed: {exc.message}")
                continue
            root = compact.root()
            if parsed.size != cp.size or parsed.root_hash != root or cp.root_hash != root:
                report.problem(f"checkpoint {cp.size}: signed root does not match the stored entries (tampered)")

    def _audit_head(self, compact: CompactRange, report: AuditReport) -> None:
        size, state = self._repo.ledger_head()
        if size != compact.size or (state or CompactRange().to_bytes()) != compact.to_bytes():
            report.problem(f"stored head (size {size}) does not match the {compact.size} entries")

    def _audit_nodes(self, levels: list[bytearray], report: AuditReport) -> None:
        """Rebuild every perfect node level by level and compare with the stored node table."""
        while len(levels[-1]) >= 64:
            below = levels[-1]
            above = bytearray()
            for i in range(0, len(below) - 63, 64):
                above += node_hash(bytes(below[i : i + 32]), bytes(below[i + 32 : i + 64]))
            levels.append(above)
        seen = 0
        for batch in self._repo.iter_nodes():
            for level, idx, digest in batch:
                seen += 1
                if level >= len(levels) or (idx + 1) * 32 > len(levels[level]):
                    report.problem(f"stored node ({level}, {idx}) is outside the tree")
                elif bytes(levels[level][idx * 32 : (idx + 1) * 32]) != digest:
                    report.problem(f"stored node ({level}, {idx}) does not match the entries")
        expected = sum(len(level) // 32 for level in levels)
        if seen != expected:
            report.problem(f"node table holds {seen} nodes, the entries make {expected}")
        report.nodes_checked = seen


__all__ = ["AuditReport", "LedgerTicket", "UsageLedger", "UsageRecord"]
