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
    multiproof,
    node_hash,
    root_at,
    root_from_multiproof,
    verify_consistency,
    verify_inclusion,
)
from consentune.ledger.receipt import (
    RECEIPT_FORMAT,
    VerifiedPages,
    VerifiedReceipt,
    build_receipt,
    build_receipt_page,
    verify_receipt,
    verify_receipt_pages,
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
    "VerifiedPages",
    "VerifiedReceipt",
    "build_receipt",
    "build_receipt_page",
    "canonical_json",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "load_or_create_signer",
    "multiproof",
    "node_hash",
    "parse_verifier_key",
    "root_at",
    "root_from_multiproof",
    "utc_timestamp",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "verify_receipt",
    "verify_receipt_pages",
]
