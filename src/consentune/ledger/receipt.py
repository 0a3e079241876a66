"""Receipts: a self-contained, offline-checkable extract of the log about one track.

A receipt bundles a signed checkpoint with the entries about a track and a
proof that they are in the log, so an artist needs only the log's verifier
key to check it.  ``consentune-receipt/v2`` pages through any number of
entries: each page lists entries after a cursor with one multi-leaf proof, and
the pages of one receipt share a checkpoint and chain by their cursors.
``consentune-receipt/v1`` (one inclusion proof per entry) still verifies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from consentune.errors import ConsentuneError, InvalidInput, VerificationFailed
from consentune.ledger.checkpoint import (
    Checkpoint,
    b64decode_strict,
    b64encode,
    parse_checkpoint_body,
    verify_checkpoint,
)
from consentune.ledger.entry import (
    MAX_SAFE_INT,
    LedgerEntry,
    canonical_json,
    parse_canonical_json,
    valid_entry_fields,
)
from consentune.ledger.entry_scan import scan_entries, split_entries
from consentune.ledger.merkle import HASH_SIZE, leaf_hash, root_from_multiproof, verify_inclusion

RECEIPT_FORMAT_V1 = "consentune-receipt/v1"
RECEIPT_FORMAT = "consentune-receipt/v2"

_TOP_KEYS = {"format", "subject", "checkpoint", "entries"}
_TOP_KEYS_V2 = {"format", "subject", "checkpoint", "page", "entries", "proof"}
_PAGE_KEYS = {"after", "next"}
_SUBJECT_KEYS = {"track", "purpose"}
_ITEM_KEYS = {"entry", "proof"}


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """What a valid receipt (or one page of one) proves: these entries are in the log at ``checkpoint``.

    ``after`` and ``next`` are the page cursors (v1 receipts: ``-1`` and None).
    """

    checkpoint: Checkpoint
    entries: tuple[LedgerEntry, ...]
    track: str
    purpose: str | None
    after: int = -1
    next: int | None = None


@dataclass(frozen=True, slots=True)
class VerifiedPages:
    """What a complete paged receipt proves: ``count`` entries about the subject are in the log."""

    checkpoint: Checkpoint
    track: str
    purpose: str | None
    pages: int
    count: int
    first: int
    last: int


def _check_subject(entry: LedgerEntry, track: str, purpose: str | None) -> str | None:
    """Return why ``entry`` does not belong in a receipt for the subject, if it doesn't."""
    if entry.track != track:
        return f"entry {entry.sequence} is about track {entry.track!r}, not {track!r}"
    if purpose is not None and entry.purpose != purpose:
        return f"entry {entry.sequence} has purpose {entry.purpose!r}, not {purpose!r}"
    return None


def _check_entries(
    entries: Sequence[LedgerEntry], proofs: Sequence[Sequence[bytes]], *, checkpoint: Checkpoint
) -> None:
    """Check ordering and every inclusion proof; raise VerificationFailed on the first fault."""
    if not entries:
        raise VerificationFailed("receipt has no entries", hint="a receipt proves inclusion only")
    previous = -1
    for entry, proof in zip(entries, proofs, strict=True):
        if entry.sequence <= previous:
            raise VerificationFailed(
                f"entry {entry.sequence} follows {previous}; sequences must strictly increase",
                hint="entries are listed in log order without repeats",
            )
        previous = entry.sequence
        verify_inclusion(
            leaf_hash=entry.leaf(),
            index=entry.sequence,
            size=checkpoint.size,
            proof=proof,
            root=checkpoint.root_hash,
        )


def build_receipt(
    *,
    subject_track: str,
    subject_purpose: str | None,
    entries: Sequence[tuple[LedgerEntry, list[bytes]]],
    checkpoint_note: str,
) -> bytes:
    """Assemble a receipt as canonical JSON bytes.

    Entries are sorted by sequence and every proof is checked against the
    checkpoint before anything is returned, so a broken receipt is never issued.

    Raises
    ------
    InvalidInput
        If an entry is about another track or purpose.
    VerificationFailed
        If the checkpoint is malformed, there are no entries, sequences repeat,
        or a proof does not lead to the checkpoint root.
    """
    ordered = sorted(entries, key=lambda item: item[0].sequence)
    for entry, _ in ordered:
        problem = _check_subject(entry, subject_track, subject_purpose)
        if problem:
            raise InvalidInput(problem, hint="only pass entries about the receipt's subject")
    body, _, _ = checkpoint_note.partition("\n\n")
    checkpoint = parse_checkpoint_body(body + "\n")
    _check_entries([e for e, _ in ordered], [p for _, p in ordered], checkpoint=checkpoint)
    return canonical_json(
        {
            "format": RECEIPT_FORMAT_V1,
            "subject": {"track": subject_track, "purpose": subject_purpose},
            "checkpoint": checkpoint_note,
            "entries": [{"entry": entry.to_dict(), "proof": [b64encode(h) for h in proof]} for entry, proof in ordered],
        }
    )


def _require_keys(obj: Any, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != keys:
        found = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise VerificationFailed(f"{what} must have exactly keys {sorted(keys)}, got {found}")
    return obj


def _require_str(value: Any, what: str, *, nullable: bool = False) -> Any:
    if not (isinstance(value, str) or (nullable and value is None)):
        raise VerificationFailed(f"{what} must be a string, got {type(value).__name__}")
    return value


def _decode_proof(value: Any, position: int) -> list[bytes]:
    if not isinstance(value, list):
        raise VerificationFailed(f"proof of entry #{position} is not a list")
    proof = [b64decode_strict(_require_str(item, f"proof #{position}")) for item in value]
    if any(len(element) != HASH_SIZE for element in proof):
        raise VerificationFailed(f"proof of entry #{position} has a hash of the wrong size")
    return proof


def _verify(data: bytes, verifier_key: str) -> VerifiedReceipt:
    parsed = parse_canonical_json(data)
    if isinstance(parsed, dict) and parsed.get("format") == RECEIPT_FORMAT:
        page = _PageCheck(parsed, verifier_key, None)
        proven = tuple(LedgerEntry.from_dict(e) for e in page.items)
        return VerifiedReceipt(page.checkpoint, proven, page.track, page.purpose, page.after, page.next)
    receipt = _require_keys(parsed, _TOP_KEYS, "receipt")
    if receipt["format"] != RECEIPT_FORMAT_V1:
        raise VerificationFailed(f"unknown receipt format {receipt['format']!r}")
    subject = _require_keys(receipt["subject"], _SUBJECT_KEYS, "subject")
    track = _require_str(subject["track"], "subject.track")
    purpose = _require_str(subject["purpose"], "subject.purpose", nullable=True)
    note = _require_str(receipt["checkpoint"], "checkpoint")
    checkpoint = verify_checkpoint(note, verifier_key)
    items = receipt["entries"]
    if not isinstance(items, list):
        raise VerificationFailed("entries must be a list")
    items = [_require_keys(item, _ITEM_KEYS, f"entries[{i}]") for i, item in enumerate(items)]
    entries = [LedgerEntry.from_dict(item["entry"]) for item in items]
    for entry in entries:
        problem = _check_subject(entry, track, purpose)
        if problem:
            raise VerificationFailed(problem)
    proofs = [_decode_proof(item["proof"], i) for i, item in enumerate(items)]
    _check_entries(entries, proofs, checkpoint=checkpoint)
    return VerifiedReceipt(checkpoint, tuple(entries), track, purpose)


def verify_receipt(data: bytes, *, verifier_key: str) -> VerifiedReceipt:
    """Check every claim in a receipt offline; return what it proves.

    Raises
    ------
    VerificationFailed
        On any fault: non-canonical bytes, unexpected keys, unknown format,
        bad checkpoint signature, an entry about another subject, entries out
        of order, or an inclusion proof that does not reach the checkpoint root.
    """
    try:
        return _verify(data, verifier_key)
    except VerificationFailed:
        raise
    except (ConsentuneError, ValueError, TypeError) as exc:
        raise VerificationFailed(f"receipt rejected: {exc}", hint="the receipt is damaged or was altered") from exc


# -- v2: pages with one multi-leaf proof each ----------------------------------------------


def build_receipt_page(
    *,
    subject_track: str,
    subject_purpose: str | None,
    entries: Sequence[LedgerEntry],
    proof: Sequence[bytes],
    checkpoint_note: str,
    after: int,
    more: bool,
) -> bytes:
    """Assemble one ``consentune-receipt/v2`` page and check it before returning it.

    ``entries`` are the subject's entries with sequence above ``after`` (sorted),
    ``proof`` their MPROOF at the checkpoint's size, ``more`` whether further
    entries about the subject follow (then ``next`` is the last listed sequence).
    """
    ordered = sorted(entries, key=lambda e: e.sequence)
    if not ordered:
        raise InvalidInput("a receipt page needs at least one entry", hint="ask for a page that has entries")
    data = canonical_json(
        {
            "format": RECEIPT_FORMAT,
            "subject": {"track": subject_track, "purpose": subject_purpose},
            "checkpoint": checkpoint_note,
            "page": {"after": after, "next": ordered[-1].sequence if more else None},
            "entries": [e.to_dict() for e in ordered],
            "proof": [b64encode(h) for h in proof],
        }
    )
    body, _, _ = checkpoint_note.partition("\n\n")
    _PageCheck(parse_canonical_json(data), None, parse_checkpoint_body(body + "\n"))
    return data


def _reject(value: str) -> object:
    raise VerificationFailed(f"number {value[:30]} is not an integer", hint="receipts hold no floats")


def _fast_canonical(data: bytes) -> Any:
    """parse_canonical_json at C speed: hooks reject floats and NaN; the bytes must round-trip.

    Integer ranges are checked where integers may occur (entry fields, page cursors).
    """
    try:
        obj = json.loads(data, parse_float=_reject, parse_constant=_reject)
        again = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise VerificationFailed(f"receipt page is not valid UTF-8 JSON: {exc}", hint="the page is damaged") from None
    if again != data:
        raise VerificationFailed("receipt page is not in canonical form", hint="the page was altered")
    return obj


_ENTRY_ORDER = ("sequence", "time", "actor", "action", "purpose", "track", "decision", "reason", "terms_version")


class _PageCheck:
    """Verify one v2 page; the attributes say what it proves."""

    def __init__(
        self,
        page: Any,
        verifier_key: str | None,
        checkpoint: Checkpoint | None,
        raw_entries: list[bytes] | None = None,
    ) -> None:
        """``raw_entries``: the entries cut from the page bytes (``page`` then holds ``"entries": []``)."""
        page = _require_keys(page, _TOP_KEYS_V2, "receipt page")
        if page["format"] != RECEIPT_FORMAT:
            raise VerificationFailed(f"unknown receipt format {page['format']!r}")
        subject = _require_keys(page["subject"], _SUBJECT_KEYS, "subject")
        self.track: str = _require_str(subject["track"], "subject.track")
        self.purpose: str | None = _require_str(subject["purpose"], "subject.purpose", nullable=True)
        self.note: str = _require_str(page["checkpoint"], "checkpoint")
        if checkpoint is None:
            checkpoint = verify_checkpoint(self.note, verifier_key or "")
        self.checkpoint = checkpoint
        cursor = _require_keys(page["page"], _PAGE_KEYS, "page")
        self.after, self.next = cursor["after"], cursor["next"]
        if type(self.after) is not int or not -1 <= self.after <= MAX_SAFE_INT:
            raise VerificationFailed("page.after must be an integer in [-1, 2**53 - 1]")
        if not (self.next is None or (type(self.next) is int and 0 <= self.next <= MAX_SAFE_INT)):
            raise VerificationFailed("page.next must be null or an integer in [0, 2**53 - 1]")
        self.items = page["entries"]
        if raw_entries is None and (not isinstance(self.items, list) or not self.items):
            raise VerificationFailed("entries must be a non-empty list")
        if not isinstance(page["proof"], list):
            raise VerificationFailed("proof must be a list")
        proof = [b64decode_strict(_require_str(h, "proof hash")) for h in page["proof"]]
        if raw_entries is None:
            indices, leaves = self._leaves()
        else:
            if self.items != []:
                raise VerificationFailed("receipt page is not in canonical form", hint="the page was altered")
            indices, leaves = scan_entries(raw_entries, track=self.track, purpose=self.purpose, after=self.after)
        self.count, self.first, self.last = len(indices), indices[0], indices[-1]
        if self.next is not None and self.next != indices[-1]:
            raise VerificationFailed(f"page.next {self.next} is not the page's last sequence {indices[-1]}")
        root = root_from_multiproof(indices=indices, leaf_hashes=leaves, size=checkpoint.size, proof=proof)
        if root != checkpoint.root_hash:
            raise VerificationFailed("the entries and proof do not lead to the checkpoint root")

    def _leaves(self) -> tuple[list[int], list[bytes]]:
        indices, leaves = [], []
        track, purpose, previous = self.track, self.purpose, self.after
        for item, data in zip(self.items, _entry_bytes(self.items), strict=True):
            if not valid_entry_fields(item):
                raise VerificationFailed(f"entry {str(item)[:80]} is not a valid ledger entry (docs/ledger.md §2.2)")
            sequence = item["sequence"]
            if item["track"] != track or (purpose is not None and item["purpose"] != purpose):
                raise VerificationFailed(f"entry {sequence} is not about the receipt's subject")
            if sequence <= previous:
                raise VerificationFailed(f"entry {sequence} follows {previous}; sequences must strictly increase")
            previous = sequence
            indices.append(sequence)
            leaves.append(leaf_hash(data))
        return indices, leaves


def _entry_bytes(items: list[Any]) -> list[bytes]:
    """The canonical bytes of every entry, from one encoding of the list."""
    blob = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    parts = split_entries(blob)
    if len(parts) != len(items):
        raise VerificationFailed("entries are not ledger entry objects", hint="each entry starts with its action")
    return parts


def _cut_entries(data: bytes) -> tuple[bytes, list[bytes] | None]:
    """(the page with ``"entries": []``, its entries' own bytes), or (the page, None) if it has no such array.

    The page's keys sort ``checkpoint`` first and ``format`` right after
    ``entries``; both cut marks hold an unescaped quote, so in canonical JSON
    they occur only at structure (entries hold no arrays).  What is cut out
    must be entries the scanner accepts and what is left must be canonical, so
    the whole page is canonical exactly when both checks pass.
    """
    start = data.find(b',"entries":[')
    end = -1 if start < 0 else data.find(b'}],"format":', start)
    if end < 0:
        return data, None
    start += len(b',"entries":')
    return data[:start] + b"[]" + data[end + 2 :], split_entries(data[start : end + 2])


def verify_receipt_pages(pages: Iterable[bytes], *, verifier_key: str) -> VerifiedPages:
    """Verify a paged receipt: every page, one checkpoint and subject, cursors chained from -1 to null.

    Pages are checked one at a time (memory holds one page).  Entries are
    checked as canonical entries of the subject, but not kept.

    Raises
    ------
    VerificationFailed
        If any page fails, pages disagree on checkpoint or subject, or the cursors do not chain.
    """
    count, first, last, number = 0, -1, -1, 0
    head: _PageCheck | None = None
    last_next: int | None = None
    try:
        for number, data in enumerate(pages, start=1):
            rest, entries = _cut_entries(data)
            checkpoint = None if head is None else head.checkpoint
            page = _PageCheck(_fast_canonical(rest), verifier_key, checkpoint, raw_entries=entries)
            if head is not None and (page.note, page.track, page.purpose) != (head.note, head.track, head.purpose):
                raise VerificationFailed(f"page {number} has another checkpoint or subject than page 1")
            expected_after = -1 if head is None else last
            if page.after != expected_after:
                raise VerificationFailed(f"page {number} starts after {page.after}, not after {expected_after}")
            if head is not None and last_next is None:
                raise VerificationFailed(f"page {number} follows the page that said it was the last")
            head = head or page
            count += page.count
            first = page.first if first < 0 else first
            last, last_next = page.last, page.next
    except VerificationFailed:
        raise
    except (ConsentuneError, ValueError, TypeError, KeyError) as exc:
        raise VerificationFailed(
            f"receipt page rejected: {exc}", hint="the receipt is damaged or was altered"
        ) from None
    if head is None:
        raise VerificationFailed("the receipt has no pages", hint="a receipt proves at least one entry")
    if last_next is not None:
        raise VerificationFailed("the last page says more pages follow", hint="the receipt is incomplete")
    return VerifiedPages(head.checkpoint, head.track, head.purpose, number, count, first, last)


__all__ = [
    "RECEIPT_FORMAT",
    "RECEIPT_FORMAT_V1",
    "VerifiedPages",
    "VerifiedReceipt",
    "build_receipt",
    "build_receipt_page",
    "verify_receipt",
    "verify_receipt_pages",
]
