"""The sequencer's pure half: queue payloads in, log rows, tree nodes and a new head out.

An append is acknowledged once its records sit durably in a queue; no index
is assigned then, so appends never serialise on the log head.  An
*integrator* (one at a time, enforced by the storage adapter) later takes
queued batches in queue order, gives them consecutive sequence numbers,
extends the compact range (the tree's right edge) leaf by leaf and writes
the new head once per integration.  Nothing here reloads earlier leaves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from consentune.errors import InvalidInput, LedgerError
from consentune.ledger.entry import DECISIONS, MAX_SAFE_INT, check_timestamp, fast_entry_bytes
from consentune.ledger.merkle import CompactRange, leaf_hash

MAX_ENTRY_BYTES = 65_535  # entry bundles prefix each entry with a big-endian uint16 length

Record = tuple[str, str, str | None, str | None, str, str, int | None]


@dataclass(frozen=True, slots=True)
class QueuedBatch:
    """One acknowledged append: its queue id and the payload written by :func:`encode_batch`."""

    id: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class LedgerTicket:
    """What an append returns: the queue batch that holds its ``count`` records.

    The batch's records get consecutive sequence numbers when integrated;
    :meth:`consentune.ledger.log.UsageLedger.sequences` resolves them.  When
    several requests share one append (the gate's group commit), each ticket
    names its own ``count`` records starting ``offset`` records into the batch.
    """

    batch_id: int
    count: int
    offset: int = 0

    def part(self, offset: int, count: int) -> LedgerTicket:
        """The ticket of ``count`` records starting ``offset`` records into this one."""
        if offset < 0 or count < 0 or offset + count > self.count:
            raise ValueError(f"records {offset}..{offset + count} are not inside a ticket of {self.count}")
        return LedgerTicket(self.batch_id, count, self.offset + offset)


@dataclass(frozen=True, slots=True)
class IntegrationPlan:
    """Everything one integration writes, in one transaction."""

    rows: Sequence[tuple[int, bytes, bytes, str | None, str | None]]  # seq, data, leaf, track, purpose
    nodes: Sequence[tuple[int, int, bytes]]  # level, index, hash
    batches: Sequence[tuple[int, int, int]]  # queue id, first sequence, count
    old_size: int
    new_size: int
    new_state: bytes
    # what the artist overview reads, so it never scans the log: entries per (track, day, purpose, decision)
    # (days since 1970-01-01 UTC) and every refusal about a track (seq, time, actor, purpose, track, reason)
    usage: Mapping[tuple[str, int, str, str], int] = field(default_factory=dict)
    refusals: Sequence[tuple[int, str, str, str, str, str]] = ()


def encode_batch(stamp: str, records: Sequence[Record]) -> bytes:
    """Validate ``records`` now (so a bad one fails its caller, not the integrator) and pack them.

    The payload is the compact JSON ``[stamp, [[actor, action, purpose, track,
    decision, reason, terms_version], ...]]``; the time stamp is shared by the batch.

    Raises
    ------
    InvalidInput
        If a record would not make a valid entry or is longer than an entry bundle allows.
    """
    check_timestamp(stamp)
    for record in records:
        if not _plainly_valid(record):  # the common case is checked cheaply; anything else is encoded once
            size = len(fast_entry_bytes(2**53 - 1, stamp, *record))
            if size > MAX_ENTRY_BYTES:
                raise InvalidInput(
                    f"ledger entry would be {size} bytes, over the {MAX_ENTRY_BYTES}-byte limit",
                    hint="shorten the reason text",
                )
    return json.dumps([stamp, [list(r) for r in records]], separators=(",", ":"), ensure_ascii=False).encode()


_ENTRY_OVERHEAD = 256  # bytes of keys, quotes, separators, sequence and time in an encoded entry
_MAX_TEXT = (MAX_ENTRY_BYTES - _ENTRY_OVERHEAD) // 6  # a character encodes to at most 6 bytes (\u00XX)


def _plainly_valid(record: Record) -> bool:
    """True when ``record`` is certainly a valid entry that fits a bundle, without encoding it."""
    actor, action, purpose, track, decision, reason, version = record
    return (
        type(actor) is str
        and type(action) is str
        and type(reason) is str
        and bool(actor)
        and bool(action)
        and decision in DECISIONS
        and (purpose is None or type(purpose) is str)
        and (track is None or type(track) is str)
        and (version is None or (type(version) is int and 0 <= version <= MAX_SAFE_INT))
        and len(actor) + len(action) + len(reason) + len(purpose or "") + len(track or "") <= _MAX_TEXT
        and not _has_surrogate(actor, action, reason, purpose, track)
    )


def _has_surrogate(*texts: str | None) -> bool:
    for text in texts:
        if text and not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _decode(batch: QueuedBatch) -> tuple[str, list[list[object]]]:
    try:
        stamp, records = json.loads(batch.payload)
    except (ValueError, TypeError) as exc:
        raise LedgerError(
            f"queued batch {batch.id} is not a valid payload: {exc}",
            hint="the queue table was written by something other than UsageLedger.append; remove that row",
        ) from None
    return stamp, records


def plan_integration(size: int, state: bytes, batches: Sequence[QueuedBatch]) -> IntegrationPlan:
    """Give ``batches`` (in queue order) the next sequence numbers and extend the tree.

    ``state`` is the stored compact range of the first ``size`` leaves.
    """
    compact = CompactRange.from_bytes(state) if state else CompactRange()
    if compact.size != size:
        raise LedgerError(
            f"stored head says size {size} but its compact range has {compact.size} leaves",
            hint="the ledger head row is damaged; run `consentune ledger audit --full`",
        )
    rows: list[tuple[int, bytes, bytes, str | None, str | None]] = []
    nodes: list[tuple[int, int, bytes]] = []
    mapping = []
    usage: dict[tuple[str, int, str, str], int] = {}
    refusals: list[tuple[int, str, str, str, str, str]] = []
    extend, append_leaf, add_row = nodes.extend, compact.append, rows.append
    seq = size
    for batch in batches:
        stamp, records = _decode(batch)
        mapping.append((batch.id, seq, len(records)))
        day = _day_number(stamp)
        for record in records:
            try:
                data = fast_entry_bytes(seq, stamp, *record)  # type: ignore[arg-type]
            except (InvalidInput, TypeError) as exc:
                raise LedgerError(
                    f"queued batch {batch.id} holds an invalid record: {exc}",
                    hint="the queue table was written by something other than UsageLedger.append",
                ) from None
            leaf = leaf_hash(data)
            extend(append_leaf(leaf))
            add_row((seq, data, leaf, record[3], record[2]))  # type: ignore[arg-type]
            track, purpose, decision = record[3], record[2], record[4]
            if track is not None and purpose is not None:
                key = (str(track), day, str(purpose), str(decision))
                usage[key] = usage.get(key, 0) + 1
                if decision == "deny":
                    refusals.append((seq, stamp, str(record[0]), str(purpose), str(track), str(record[5])))
            seq += 1
    return IntegrationPlan(rows, nodes, mapping, size, compact.size, compact.to_bytes(), usage, refusals)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _day_number(stamp: str) -> int:
    """Days since 1970-01-01 of an entry time stamp (``YYYY-MM-DDThh:mm:ss…Z``, checked at append)."""
    return date.fromisoformat(stamp[:10]).toordinal() - _EPOCH_ORDINAL


__all__ = [
    "MAX_ENTRY_BYTES",
    "IntegrationPlan",
    "LedgerTicket",
    "QueuedBatch",
    "Record",
    "encode_batch",
    "plan_integration",
]
