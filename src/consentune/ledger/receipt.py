"""Receipts: a self-contained, offline-checkable extract of the log about one track.

A receipt bundles a signed checkpoint with the entries about a track and their
inclusion proofs, so an artist needs only the log's verifier key to check it.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from consentune.ledger.entry import LedgerEntry, canonical_json, parse_canonical_json
from consentune.ledger.merkle import HASH_SIZE, verify_inclusion

RECEIPT_FORMAT = "consentune-receipt/v1"

_TOP_KEYS = {"format", "subject", "checkpoint", "entries"}
_SUBJECT_KEYS = {"track", "purpose"}
_ITEM_KEYS = {"entry", "proof"}


@dataclass(frozen=True, slots=True)
class VerifiedReceipt:
    """What a valid receipt proves: these entries are in the log at ``checkpoint``."""

    checkpoint: Checkpoint
    entries: tuple[LedgerEntry, ...]
    track: str
    purpose: str | None


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
            "format": RECEIPT_FORMAT,
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
    receipt = _require_keys(parse_canonical_json(data), _TOP_KEYS, "receipt")
    if receipt["format"] != RECEIPT_FORMAT:
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


__all__ = ["RECEIPT_FORMAT", "VerifiedReceipt", "build_receipt", "verify_receipt"]
