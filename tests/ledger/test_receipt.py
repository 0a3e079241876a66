"""Receipts verify offline, and no single changed byte survives verification."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from consentune.errors import InvalidInput, VerificationFailed
from consentune.ledger import (
    Checkpoint,
    CompactRange,
    LedgerEntry,
    LogSigner,
    MemoryNodeSource,
    build_receipt,
    canonical_json,
    inclusion_proof,
    verify_receipt,
)

ORIGIN = "consentune.example/ledger"
TRACKS = ("trk_a", "trk_b", "trk_c", None)
PURPOSES = ("recommend", "identify", None)


@dataclass(frozen=True)
class Log:
    entries: list[LedgerEntry]
    source: MemoryNodeSource
    signer: LogSigner
    note: str


def _entry(sequence: int) -> LedgerEntry:
    return LedgerEntry(
        sequence=sequence,
        time=f"2026-11-27T03:{sequence // 60:02d}:{sequence % 60:02d}.{sequence:06d}Z",
        actor="service:engine",
        action="read-features",
        purpose=PURPOSES[sequence % 3],
        track=TRACKS[sequence % 4],
        decision="allow" if sequence % 5 else "deny",
        reason=f"rule #{sequence} — ok",
        terms_version=sequence % 2 or None,
    )


@pytest.fixture(scope="module")
def log() -> Log:
    entries = [_entry(i) for i in range(50)]
    source, compact = MemoryNodeSource(), CompactRange()
    source.add(compact.extend(entry.leaf() for entry in entries))
    signer = LogSigner.from_private_bytes(ORIGIN, bytes(32))
    note = signer.sign_checkpoint(Checkpoint(ORIGIN, compact.size, compact.root()))
    return Log(entries, source, signer, note)


def _receipt(log: Log, track: str, purpose: str | None = None) -> bytes:
    chosen = [e for e in log.entries if e.track == track and (purpose is None or e.purpose == purpose)]
    return build_receipt(
        subject_track=track,
        subject_purpose=purpose,
        entries=[(e, inclusion_proof(e.sequence, len(log.entries), log.source)) for e in chosen],
        checkpoint_note=log.note,
    )


def test_receipt_verifies(log: Log) -> None:
    verified = verify_receipt(_receipt(log, "trk_a"), verifier_key=log.signer.verifier_key())
    assert [e.sequence for e in verified.entries] == list(range(0, 50, 4))
    assert verified.checkpoint.size == 50
    assert (verified.track, verified.purpose) == ("trk_a", None)
    with_purpose = _receipt(log, "trk_b", "identify")
    verified = verify_receipt(with_purpose, verifier_key=log.signer.verifier_key())
    assert {e.purpose for e in verified.entries} == {"identify"}


def test_receipt_layout(log: Log) -> None:
    receipt = json.loads(_receipt(log, "trk_c"))
    assert receipt["format"] == "consentune-receipt/v1"
    assert receipt["subject"] == {"track": "trk_c", "purpose": None}
    assert receipt["checkpoint"] == log.note
    assert receipt["entries"][0]["entry"] == log.entries[2].to_dict()


def test_every_changed_byte_is_rejected(log: Log) -> None:
    data = _receipt(log, "trk_a", "identify")
    key = log.signer.verifier_key()
    for position in range(len(data)):
        for mask in (0x01, 0x20):
            damaged = bytearray(data)
            damaged[position] ^= mask
            with pytest.raises(VerificationFailed):
                verify_receipt(bytes(damaged), verifier_key=key)


def test_wrong_key_fails(log: Log) -> None:
    other = LogSigner.generate(ORIGIN)
    with pytest.raises(VerificationFailed, match="signature"):
        verify_receipt(_receipt(log, "trk_a"), verifier_key=other.verifier_key())
    with pytest.raises(VerificationFailed):
        verify_receipt(_receipt(log, "trk_a"), verifier_key="not a key")


def _edit(data: bytes, change: dict[str, object]) -> bytes:
    return canonical_json(json.loads(data) | change)


@contextmanager
def _explain(change: dict[str, object]) -> Iterator[None]:
    try:
        yield
    except pytest.fail.Exception as exc:
        raise AssertionError(f"edit {sorted(change)} was accepted") from exc


def test_edited_receipts_fail(log: Log) -> None:
    data = _receipt(log, "trk_a")
    receipt = json.loads(data)
    first, second = receipt["entries"][:2]
    edits: list[dict[str, object]] = [
        {"subject": {"track": "trk_b", "purpose": None}},
        {"subject": {"track": "trk_a", "purpose": "identify"}},
        {"subject": {"track": "trk_a"}},
        {"format": "consentune-receipt/v2"},
        {"entries": [second, first]},
        {"entries": [first, first]},
        {"entries": []},
        {"entries": [first | {"proof": first["proof"][:-1]}]},
        {"entries": [first | {"extra": 1}]},
        {"entries": [{"entry": first["entry"] | {"reason": "edited"}, "proof": first["proof"]}]},
        {"checkpoint": log.note.replace("\n50\n", "\n49\n")},
        {"extra": True},
    ]
    key = log.signer.verifier_key()
    for change in edits:
        with _explain(change), pytest.raises(VerificationFailed):
            verify_receipt(_edit(data, change), verifier_key=key)
    with pytest.raises(VerificationFailed, match="canonical"):
        verify_receipt(json.dumps(receipt).encode(), verifier_key=key)


def test_build_rejects_entries_about_other_tracks(log: Log) -> None:
    entry = log.entries[1]
    with pytest.raises(InvalidInput, match="trk_b"):
        build_receipt(
            subject_track="trk_a",
            subject_purpose=None,
            entries=[(entry, inclusion_proof(1, 50, log.source))],
            checkpoint_note=log.note,
        )


def test_build_rejects_bad_proofs(log: Log) -> None:
    entry = log.entries[0]
    with pytest.raises(VerificationFailed):
        build_receipt(
            subject_track="trk_a",
            subject_purpose=None,
            entries=[(entry, inclusion_proof(4, 50, log.source))],
            checkpoint_note=log.note,
        )


def test_worked_example_in_docs_still_verifies() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"
    lines = doc.read_text(encoding="utf-8").splitlines()
    key = next(line for line in lines if line.startswith(f"{ORIGIN}+"))
    receipt = next(line for line in lines if line.startswith('{"checkpoint"'))
    assert key == LogSigner.from_private_bytes(ORIGIN, bytes(32)).verifier_key()
    verified = verify_receipt(receipt.encode(), verifier_key=key)
    assert [e.sequence for e in verified.entries] == [2]
