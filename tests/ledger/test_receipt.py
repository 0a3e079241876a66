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
    build_receipt_page,
    canonical_json,
    inclusion_proof,
    multiproof,
    verify_receipt,
    verify_receipt_pages,
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


# -- v2: paged receipts with one multi-leaf proof per page -----------------------------------


def _pages(log: Log, track: str, *, per_page: int, purpose: str | None = None) -> list[bytes]:
    chosen = [e for e in log.entries if e.track == track and (purpose is None or e.purpose == purpose)]
    pages, after = [], -1
    for start in range(0, len(chosen), per_page):
        part = chosen[start : start + per_page]
        more = start + per_page < len(chosen)
        proof = multiproof([e.sequence for e in part], len(log.entries), log.source)
        pages.append(
            build_receipt_page(
                subject_track=track,
                subject_purpose=purpose,
                entries=part,
                proof=proof,
                checkpoint_note=log.note,
                after=after,
                more=more,
            )
        )
        after = part[-1].sequence
    return pages


def test_paged_receipt_verifies_as_a_whole_and_page_by_page(log: Log) -> None:
    key = log.signer.verifier_key()
    pages = _pages(log, "trk_a", per_page=4)
    assert len(pages) == 4  # 13 entries about trk_a
    whole = verify_receipt_pages(pages, verifier_key=key)
    assert (whole.pages, whole.count, whole.first, whole.last) == (4, 13, 0, 48)
    first = verify_receipt(pages[0], verifier_key=key)
    assert [e.sequence for e in first.entries] == [0, 4, 8, 12] and (first.after, first.next) == (-1, 12)
    last = verify_receipt(pages[-1], verifier_key=key)
    assert last.next is None and last.after == 44
    layout = json.loads(pages[1])
    assert sorted(layout) == ["checkpoint", "entries", "format", "page", "proof", "subject"]
    assert layout["format"] == "consentune-receipt/v2" and layout["page"] == {"after": 12, "next": 28}


def test_paged_receipt_rejects_missing_reordered_or_mixed_pages(log: Log) -> None:
    key = log.signer.verifier_key()
    pages = _pages(log, "trk_a", per_page=4)
    for broken in (pages[:2] + pages[3:], [pages[1], pages[0], *pages[2:]], pages[:-1], [*pages, pages[-1]]):
        with pytest.raises(VerificationFailed):
            verify_receipt_pages(broken, verifier_key=key)
    other = _pages(log, "trk_b", per_page=100)
    with pytest.raises(VerificationFailed):
        verify_receipt_pages([*pages[:-1], other[0]], verifier_key=key)
    with pytest.raises(VerificationFailed):
        verify_receipt_pages([], verifier_key=key)


def test_every_changed_byte_of_a_page_is_rejected(log: Log) -> None:
    page = _pages(log, "trk_c", per_page=5, purpose="recommend")[0]
    key = log.signer.verifier_key()
    verify_receipt(page, verifier_key=key)
    for position in range(len(page)):
        damaged = bytearray(page)
        damaged[position] ^= 0x01
        with pytest.raises(VerificationFailed):
            verify_receipt(bytes(damaged), verifier_key=key)
        with pytest.raises(VerificationFailed):
            verify_receipt_pages([bytes(damaged)], verifier_key=key)


def test_a_page_with_entries_of_another_subject_cannot_be_built(log: Log) -> None:
    entries = [log.entries[0], log.entries[1]]  # trk_a and trk_b
    proof = multiproof([0, 1], len(log.entries), log.source)
    with pytest.raises(VerificationFailed):
        build_receipt_page(
            subject_track="trk_a",
            subject_purpose=None,
            entries=entries,
            proof=proof,
            checkpoint_note=log.note,
            after=-1,
            more=False,
        )


def test_entries_whose_text_looks_like_page_structure_still_verify() -> None:
    tricky = ['},{"action":"x', '}],"format":"y', ',"entries":[{', "\\u0000 \u2028 é"]
    entries = [
        LedgerEntry(i, "2026-11-27T03:00:00.000000Z", "service:t", "read-audio", None, "trk_q", "allow", text, None)
        for i, text in enumerate(tricky)
    ]
    source, compact = MemoryNodeSource(), CompactRange()
    source.add(compact.extend(e.leaf() for e in entries))
    signer = LogSigner.from_private_bytes(ORIGIN, bytes(32))
    note = signer.sign_checkpoint(Checkpoint(ORIGIN, compact.size, compact.root()))
    page = build_receipt_page(
        subject_track="trk_q",
        subject_purpose=None,
        entries=entries,
        proof=multiproof([0, 1, 2, 3], compact.size, source),
        checkpoint_note=note,
        after=-1,
        more=False,
    )
    key = signer.verifier_key()
    assert [e.reason for e in verify_receipt(page, verifier_key=key).entries] == tricky
    assert verify_receipt_pages([page], verifier_key=key).count == 4  # entries cut from the page bytes


def test_the_entry_scanner_accepts_exactly_the_canonical_entries() -> None:
    """Byte-level page checks agree with the JSON path on a family of odd but valid and invalid entries."""
    import json as _json
    import random as _random

    from consentune.errors import ConsentuneError
    from consentune.ledger.entry import canonical_sequence, fast_entry_bytes
    from consentune.ledger.entry_scan import entry_sequence, scan_entries

    rnd = _random.Random(3)
    alphabet = ["a", "Z", '"', "\\", "\n", "\x00", "\x1f", "\x7f", "é", "😀", "\u2028", "/", " ", "}", ',{"action":']
    for _ in range(400):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 6)))
        purpose, decision = rnd.choice([None, "stream", text]), rnd.choice(["allow", "deny", "record"])
        data = fast_entry_bytes(rnd.randrange(10**6), "2026-02-28T23:59:59.000001Z", "actor" + text, "stream",
                                purpose, "trk" + text, decision, text, rnd.choice([None, 0, 7]))  # fmt: skip
        track = _json.loads(data)["track"]
        assert scan_entries([data], track=track, purpose=None, after=-1)[0] == [canonical_sequence(data)]
        assert entry_sequence(data) == canonical_sequence(data)
        for broken in (data.replace(b'":', b'": ', 1), data.replace(b"2026-02-28", b"2026-02-30"),
                       data.replace(b'"sequence":', b'"sequence":0'), data[:-1] + b" }",
                       data.replace(b'"terms_version":', b'"terms_version":1.5,"x":')):  # fmt: skip
            try:
                canonical_sequence(broken)
                json_ok = True
            except (ConsentuneError, ValueError):
                json_ok = False
            try:
                scan_entries([broken], track=track, purpose=None, after=-1)
                scan_ok = True
            except VerificationFailed:
                scan_ok = False
            assert scan_ok == json_ok, broken
            try:
                entry_sequence(broken)
                audit_ok = True
            except ConsentuneError:
                audit_ok = False
            assert audit_ok == json_ok, broken


def test_the_time_check_agrees_with_strptime() -> None:
    import random as _random
    from datetime import datetime as _datetime

    from consentune.ledger.entry import valid_timestamp

    rnd = _random.Random(5)
    for _ in range(20_000):
        parts = [rnd.randrange(0, 10_000), rnd.randrange(0, 14), rnd.randrange(0, 33), rnd.randrange(0, 26),
                 rnd.randrange(0, 62), rnd.randrange(0, 63), rnd.randrange(10**6)]  # fmt: skip
        value = "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:06d}Z".format(*parts)
        try:
            _datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
            expected = True
        except ValueError:
            expected = False
        assert valid_timestamp(value) == expected, value
