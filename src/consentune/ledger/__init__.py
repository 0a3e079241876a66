"""Verifiable usage ledger: Merkle log, signed checkpoints, proofs and receipts.

Pure code only (apart from :func:`load_or_create_signer`); storage adapters
implement :class:`NodeSource` and persist :class:`CompactRange` heads.
The formats are specified in ``docs/ledger.md``.
"""

from consentune.ledger.checkpoint import (
    Checkpoint,
    LogSigner,
    load_or_create_signer,
    parse_verifier_key,
    verify_checkpoint,
)
from consentune.ledger.entry import LedgerEntry, canonical_json, utc_timestamp
from consentune.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodeSource,
    NodeSource,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_at,
    verify_consistency,
    verify_inclusion,
)
from consentune.ledger.receipt import (
    RECEIPT_FORMAT,
    VerifiedReceipt,
    build_receipt,
    verify_receipt,
)

__all__ = [
    "EMPTY_ROOT",
    "RECEIPT_FORMAT",
    "Checkpoint",
    "CompactRange",
    "LedgerEntry",
    "LogSigner",
    "MemoryNodeSource",
    "NodeSource",
    "VerifiedReceipt",
    "build_receipt",
    "canonical_json",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "load_or_create_signer",
    "node_hash",
    "parse_verifier_key",
    "root_at",
    "utc_timestamp",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
]
