"""UsageLedger: the append-only log service on top of a storage port.

Appends are batched: one call writes any number of entries in one
transaction under the log's write lock.  Checkpoints are signed on demand
(and whenever a receipt needs one).  ``audit`` recomputes everything from
the stored entries and reports any tampering.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from consentune.errors import ConsentuneError, InvalidInput, NotFound
from consentune.ledger.checkpoint import Checkpoint, LogSigner, verify_checkpoint
from consentune.ledger.entry import (
    LedgerEntry,
    canonical_sequence,
    check_timestamp,
    fast_entry_bytes,
    utc_timestamp,
)
from consentune.ledger.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
)
from consentune.ledger.receipt import build_receipt
from consentune.ports import AppendPlan, LedgerRepo, StoredCheckpoint


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


@dataclass(slots=True)
class AuditReport:
    size: int = 0
    checkpoints_checked: int = 0
    nodes_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < 100:
            self.problems.append(text)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _compact(state: bytes) -> CompactRange:
    return CompactRange.from_bytes(state) if state else CompactRange()


class UsageLedger:
    def __init__(
        self,
        repo: LedgerRepo,
        signer: LogSigner,
        *,
        origin: str,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._repo = repo
        self._signer = signer
        self.origin = origin
        self._clock = clock

    @property
    def verifier_key(self) -> str:
        return self._signer.verifier_key()

    @property
    def size(self) -> int:
        return self._repo.ledger_head()[0]

    def append(self, records: Sequence[UsageRecord]) -> range:
        """Append ``records`` atomically; return their sequence numbers."""
        if not records:
            return range(0)
        result = self._repo.locked_append(self._planner(records))
        return range(result.new_size - len(records), result.new_size)

    def append_once(self, records: Sequence[UsageRecord], *, key: str) -> tuple[range, bool]:
        """Append ``records`` unless a batch with ``key`` was appended before.

        Returns the batch's sequence numbers and whether this call wrote
        them; a retried batch job passes the same key and logs nothing twice.
        """
        if not key or len(key) > 160:
            raise InvalidInput(f"ledger batch key {key[:40]!r} is empty or too long", hint="use at most 160 characters")
        return self._repo.locked_append_once(key, self._planner(records))

    def _planner(self, records: Sequence[UsageRecord]) -> Callable[[int, bytes], AppendPlan]:
        stamp = utc_timestamp(self._clock())
        check_timestamp(stamp)

        def plan(size: int, state: bytes) -> AppendPlan:
            compact = _compact(state)
            rows = []
            nodes: list[tuple[int, int, bytes]] = []
            extend = nodes.extend
            for seq, rec in enumerate(records, start=size):
                data = fast_entry_bytes(
                    seq, stamp, rec.actor, rec.action, rec.purpose, rec.track,
                    rec.decision, rec.reason, rec.terms_version,
                )  # fmt: skip
                leaf = leaf_hash(data)
                extend(compact.append(leaf))
                rows.append((seq, data, leaf, rec.track, rec.purpose))
            return AppendPlan(rows, nodes, compact.size, compact.to_bytes())

        return plan

    def checkpoint(self, *, max_age_s: float = 0.0) -> StoredCheckpoint:
        """A checkpoint covering the current head, signing a new one if needed.

        ``max_age_s`` lets public callers reuse a recent checkpoint instead of
        signing (and storing) one per request while the log grows.
        """
        size, state = self._repo.ledger_head()
        latest = self._repo.latest_checkpoint()
        if latest is not None and latest.size >= size:
            return latest
        if latest is not None and (self._clock() - latest.created_at).total_seconds() < max_age_s:
            return latest
        root = _compact(state).root()
        note = self._signer.sign_checkpoint(Checkpoint(self.origin, size, root))
        stored = StoredCheckpoint(size, root, note, self._clock())
        self._repo.add_checkpoint(stored)
        return stored

    def entries(self, seqs: Sequence[int]) -> list[LedgerEntry]:
        return [LedgerEntry.from_bytes(r.data) for r in self._repo.ledger_rows(seqs)]

    def inclusion_proof(self, seq: int, size: int) -> list[bytes]:
        return inclusion_proof(seq, size, self._repo)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Proof that tree ``new_size`` extends tree ``old_size``; both must be checkpointed sizes' range."""
        size = self.size
        if not 0 < old_size <= new_size <= size:
            raise InvalidInput(
                f"sizes old={old_size}, new={new_size} are not within 1..{size} with old <= new",
                hint="ask between two checkpoints you hold; GET /v1/ledger/checkpoint gives the latest size",
            )
        return consistency_proof(old_size, new_size, self._repo)

    def track_entries(self, *, track: str, purpose: str | None = None, limit: int = 200) -> list[LedgerEntry]:
        """The latest ``limit`` entries about ``track`` (optionally one purpose), oldest first."""
        seqs = self._repo.track_ledger_seqs(track, purpose, limit=limit)  # type: ignore[arg-type]
        return self.entries(seqs)

    def recent_checkpoints(self, *, limit: int = 50) -> list[StoredCheckpoint]:
        """The ``limit`` most recent signed checkpoints, newest first."""
        return self._repo.list_checkpoints(limit=limit, newest_first=True)

    def receipt(self, *, track: str, purpose: str | None = None, limit: int = 10_000) -> bytes:
        """A self-contained receipt of the latest ``limit`` entries about ``track``."""
        cp = self.checkpoint()
        seqs = [s for s in self._repo.track_ledger_seqs(track, purpose, limit=limit) if s < cp.size]  # type: ignore[arg-type]
        if not seqs:
            raise NotFound(
                f"the ledger has no entries for track {track}" + (f" and purpose {purpose}" if purpose else ""),
                hint="check the track id; entries appear once the track is ingested or used",
            )
        entries = self.entries(seqs)
        proven = [(e, inclusion_proof(e.sequence, cp.size, self._repo)) for e in entries]
        return build_receipt(subject_track=track, subject_purpose=purpose, entries=proven, checkpoint_note=cp.note)

    def audit(self) -> AuditReport:
        """Recompute leaves, nodes, head and every checkpoint from the stored entries."""
        report = AuditReport()
        compact = CompactRange()
        checkpoints = sorted(self._repo.list_checkpoints(), key=lambda c: c.size)
        pending = list(reversed(checkpoints))
        levels: list[bytearray] = [bytearray()]
        self._check_checkpoint_at(0, compact, pending, report)
        for batch in self._repo.iter_ledger():
            for row in batch:
                self._audit_row(row.seq, row.data, row.leaf_hash, compact, report)
                levels[0] += leaf_hash(row.data)
                self._check_checkpoint_at(compact.size, compact, pending, report)
        report.size = compact.size
        self._audit_head(compact, report)
        self._audit_nodes(levels, report)
        for cp in pending:
            report.problem(f"checkpoint at size {cp.size} is beyond the {compact.size} stored entries")
        report.checkpoints_checked = len(checkpoints)
        return report

    def _audit_row(self, seq: int, data: bytes, stored_leaf: bytes, compact: CompactRange, report: AuditReport) -> None:
        expected = compact.size
        if seq != expected:
            report.problem(f"entry {expected} is missing (next stored row is {seq})")
        try:
            sequence = canonical_sequence(data)
            if sequence != seq:
                report.problem(f"row {seq} holds entry with sequence {sequence} (reordered)")
        except ConsentuneError as exc:
            report.problem(f"row {seq} is not a canonical entry: {exc.message}")
        except RecursionError:
            report.problem(f"row {seq} is not a canonical entry: nested too deeply")
        leaf = leaf_hash(data)
        if leaf != stored_leaf:
            report.problem(f"row {seq}: stored leaf hash does not match its entry (changed)")
        compact.append(leaf)

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


__all__ = ["AuditReport", "UsageLedger", "UsageRecord"]
