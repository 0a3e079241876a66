"""Usage ledger contract, on SQLite and PostgreSQL.

Proofs served from the database verify against signed checkpoints, receipts
verify offline, audit catches every kind of tampering done with raw SQL, and
two service instances appending at once still produce one gap-free log.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from itertools import combinations

import pytest
from sqlalchemy import Connection, delete, select, update

from consentune.errors import VerificationFailed
from consentune.ledger import (
    LedgerEntry,
    LogSigner,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
    verify_receipt,
    verify_receipt_pages,
)
from consentune.ledger.log import UsageRecord
from consentune.service import Consentune, open_service
from consentune.storage import tables
from consentune.types import IDENTIFY, RECOMMEND

BATCHES = (1, 2, 5, 13, 1, 31, 8)


def _records(n: int, *, tag: str) -> list[UsageRecord]:
    return [
        UsageRecord(f"service:{tag}", "read-audio", RECOMMEND, f"trk_{tag}_{i}", "allow", f"{tag} #{i}", 1)
        for i in range(n)
    ]


def _fill(svc: Consentune) -> list[int]:
    """Append the batches, signing a checkpoint after each; return the checkpoint sizes."""
    sizes = []
    for number, n in enumerate(BATCHES):
        before = svc.ledger.size
        ticket = svc.ledger.append(_records(n, tag=f"b{number}"))
        assert svc.ledger.sequences(ticket) == range(before, before + n)
        sizes.append(svc.ledger.checkpoint().size)
    return sizes


def test_every_entry_and_every_checkpoint_pair_verifies(svc: Consentune) -> None:
    start = svc.ledger.size
    sizes = _fill(svc)
    assert sizes[-1] == start + sum(BATCHES)
    key = svc.ledger.verifier_key
    roots = {}
    for cp in svc.store.list_checkpoints():
        parsed = verify_checkpoint(cp.note, key)
        assert (parsed.size, parsed.root_hash, parsed.origin) == (cp.size, cp.root_hash, svc.settings.log_origin)
        roots[cp.size] = parsed.root_hash
    assert set(sizes) <= set(roots)
    entries = svc.ledger.entries(range(sizes[-1]))
    assert [e.sequence for e in entries] == list(range(sizes[-1]))
    assert [e.reason for e in entries[start : start + 3]] == ["b0 #0", "b1 #0", "b1 #1"]
    for size in sizes:
        for entry in entries[:size]:
            proof = svc.ledger.inclusion_proof(entry.sequence, size)
            verify_inclusion(leaf_hash=entry.leaf(), index=entry.sequence, size=size, proof=proof, root=roots[size])
    for old, new in combinations(sizes, 2):
        proof = svc.ledger.consistency_proof(old, new)
        verify_consistency(old_size=old, new_size=new, old_root=roots[old], new_root=roots[new], proof=proof)


def test_proofs_do_not_verify_for_the_wrong_leaf_or_root(svc: Consentune) -> None:
    sizes = _fill(svc)
    size, old = sizes[-1], sizes[2]
    root = verify_checkpoint(svc.store.checkpoint_at(size).note, svc.ledger.verifier_key).root_hash  # type: ignore[union-attr]
    old_root = svc.store.checkpoint_at(old).root_hash  # type: ignore[union-attr]
    first, second = svc.ledger.entries([3, 4])
    proof = svc.ledger.inclusion_proof(3, size)
    with pytest.raises(VerificationFailed):
        verify_inclusion(leaf_hash=second.leaf(), index=3, size=size, proof=proof, root=root)
    with pytest.raises(VerificationFailed):
        verify_inclusion(leaf_hash=first.leaf(), index=3, size=size, proof=proof, root=old_root)
    consistency = svc.ledger.consistency_proof(old, size)
    with pytest.raises(VerificationFailed):
        verify_consistency(old_size=old, new_size=size, old_root=root, new_root=root, proof=consistency)


def test_a_receipt_verifies_offline_and_no_changed_byte_survives(
    svc: Consentune, audio_files: dict[str, bytes]
) -> None:
    artist = svc.catalog.add_artist("Ada", actor="admin")
    track = svc.catalog.ingest(audio_files["wav"], filename="a.wav", artist=artist, title=None, actor="admin").track
    svc.ledger.append(_records(9, tag="noise"))
    for purpose in (IDENTIFY, RECOMMEND, IDENTIFY):
        svc.gate.request(actor="service:test", purpose=purpose, tracks=[track.id])
    receipt = svc.ledger.receipt(track=track.id)
    verified = verify_receipt(receipt, verifier_key=svc.ledger.verifier_key)
    assert verified.track == track.id and verified.purpose is None
    at_ingest = [e.action for e in verified.entries if e.actor == "service:identify"]
    assert at_ingest == ["read-audio", "index"]  # the re-upload check at ingest is on the track's receipt too
    mine = [e for e in verified.entries if e.actor != "service:identify"]
    assert [e.action for e in mine] == ["ingest", "read-audio", "read-audio", "read-audio"]
    assert [e.purpose for e in mine[1:]] == [IDENTIFY, RECOMMEND, IDENTIFY]
    assert verified.checkpoint.size == svc.ledger.size
    step = max(1, len(receipt) // 150)
    for position in sorted({*range(0, len(receipt), step), len(receipt) - 1}):
        damaged = bytearray(receipt)
        damaged[position] ^= 0x01
        with pytest.raises(VerificationFailed):
            verify_receipt(bytes(damaged), verifier_key=svc.ledger.verifier_key)
    impostor = LogSigner.generate(svc.settings.log_origin).verifier_key()
    with pytest.raises(VerificationFailed):
        verify_receipt(receipt, verifier_key=impostor)


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
def test_audit_is_ok_on_an_untouched_log(svc: Consentune, full: bool) -> None:
    sizes = _fill(svc)
    report = svc.ledger.audit(full=full)
    assert report.ok, report.problems
    assert report.size == sizes[-1] == svc.ledger.size
    assert report.checkpoints_checked == len(svc.store.list_checkpoints()) >= len(BATCHES)
    assert report.nodes_checked == 2 * sizes[-1] - sizes[-1].bit_count()  # every perfect subtree, leaves too


# -- tampering ------------------------------------------------------------------------

E, N, C = tables.ledger_entries, tables.ledger_nodes, tables.ledger_checkpoints


def _row(conn: Connection, seq: int) -> tuple[bytes, bytes]:
    data, leaf = conn.execute(select(E.c.data, E.c.leaf_hash).where(E.c.seq == seq)).one()
    return bytes(data), bytes(leaf)


def _set_row(conn: Connection, seq: int, data: bytes, leaf: bytes) -> None:
    conn.execute(update(E).where(E.c.seq == seq).values(data=data, leaf_hash=leaf))


def _flip_data_byte(conn: Connection) -> None:
    data, leaf = _row(conn, 10)
    _set_row(conn, 10, data.replace(b"allow", b"alloW"), leaf)


def _rewrite_entry_consistently(conn: Connection) -> None:
    data, _ = _row(conn, 10)
    entry = LedgerEntry.from_bytes(data)
    forged = LedgerEntry(**{**entry.to_dict(), "decision": "deny", "reason": "never happened"})
    _set_row(conn, 10, forged.to_bytes(), forged.leaf())


def _delete_row(conn: Connection) -> None:
    conn.execute(delete(E).where(E.c.seq == 10))


def _swap_rows(conn: Connection) -> None:
    ten, eleven = _row(conn, 10), _row(conn, 11)
    _set_row(conn, 10, *eleven)
    _set_row(conn, 11, *ten)


def _swap_row_data_only(conn: Connection) -> None:
    (ten, ten_leaf), (eleven, eleven_leaf) = _row(conn, 10), _row(conn, 11)
    _set_row(conn, 10, eleven, ten_leaf)
    _set_row(conn, 11, ten, eleven_leaf)


def _change_node(conn: Connection) -> None:
    level, idx, digest = conn.execute(select(N.c.level, N.c.idx, N.c.hash).where(N.c.level == 2).limit(1)).one()
    changed = bytes([digest[0] ^ 0x80]) + bytes(digest[1:])
    conn.execute(update(N).where((N.c.level == level) & (N.c.idx == idx)).values(hash=changed))


def _change_checkpoint_note(conn: Connection) -> None:
    size, note = conn.execute(select(C.c.size, C.c.note).order_by(C.c.size.desc()).limit(1)).one()
    origin, size_line, rest = note.split("\n", 2)
    conn.execute(update(C).where(C.c.size == size).values(note=f"{origin}\n{int(size_line) + 1}\n{rest}"))


def _change_checkpoint_root(conn: Connection) -> None:
    size, root = conn.execute(select(C.c.size, C.c.root_hash).order_by(C.c.size).limit(1).offset(2)).one()
    conn.execute(update(C).where(C.c.size == size).values(root_hash=bytes(32 - len(root)) + bytes(reversed(root))))


TAMPERING: dict[str, Callable[[Connection], None]] = {
    "entry-data-byte": _flip_data_byte,
    "entry-data-and-leaf": _rewrite_entry_consistently,
    "entry-deleted": _delete_row,
    "entries-swapped": _swap_rows,
    "entries-data-swapped": _swap_row_data_only,
    "node-hash": _change_node,
    "checkpoint-note": _change_checkpoint_note,
    "checkpoint-root": _change_checkpoint_root,
}


@pytest.mark.parametrize("full", [False, True], ids=["incremental", "full"])
@pytest.mark.parametrize("tamper", sorted(TAMPERING))
def test_audit_catches_tampering(svc: Consentune, tamper: str, full: bool) -> None:
    svc.ledger.append(_records(3, tag="early"))
    assert svc.ledger.audit().ok  # the incremental audit's mark now sits below everything tampered with
    _fill(svc)
    assert svc.ledger.audit(full=full).ok
    if not full:  # an incremental audit after a clean one starts at its mark: check again from the early mark
        with svc.store.engine.begin() as conn:
            conn.execute(delete(tables.ledger_audits).where(tables.ledger_audits.c.size > 5))
    with svc.store.engine.begin() as conn:
        TAMPERING[tamper](conn)
    report = svc.ledger.audit(full=full)
    assert report.problems, tamper
    assert not report.ok


def test_incremental_audit_starts_at_its_mark_and_moves_it(svc: Consentune) -> None:
    sizes = _fill(svc)
    first = svc.ledger.audit()
    assert first.ok and first.start == 0 and first.entries_checked == sizes[-1]
    svc.ledger.append(_records(7, tag="later"))
    second = svc.ledger.audit()
    assert second.ok, second.problems
    assert (second.start, second.entries_checked, second.size) == (sizes[-1], 7, sizes[-1] + 7)
    assert svc.store.last_audit().size == sizes[-1] + 7  # type: ignore[union-attr]


def test_incremental_audit_catches_a_rewritten_node_on_the_audited_edge(svc: Consentune) -> None:
    _fill(svc)
    assert svc.ledger.audit().ok
    size = svc.ledger.size
    level = size.bit_length() - 1  # the largest perfect subtree of the audited size sits on its right edge
    with svc.store.engine.begin() as conn:
        conn.execute(update(N).where((N.c.level == level) & (N.c.idx == 0)).values(hash=bytes(32)))
    svc.ledger.append(_records(2, tag="after"))
    report = svc.ledger.audit()
    assert not report.ok
    assert any("no longer fold" in p for p in report.problems), report.problems


# -- key file and concurrent writers ----------------------------------------------------


def test_signing_key_file_is_private(svc: Consentune) -> None:
    assert stat.S_IMODE(os.stat(svc.settings.key_path).st_mode) == 0o600


def test_two_instances_appending_at_once_make_one_gap_free_log(svc: Consentune) -> None:
    other = open_service(svc.settings)
    assert other.ledger.verifier_key == svc.ledger.verifier_key
    start = svc.ledger.size
    rounds, per_batch = 25, 4
    barrier = threading.Barrier(2)
    results: dict[str, list[range]] = {}
    errors: list[BaseException] = []

    def writer(service: Consentune, tag: str) -> None:
        try:
            barrier.wait()
            tickets = [service.ledger.append(_records(per_batch, tag=f"{tag}{r}")) for r in range(rounds)]
            results[tag] = [service.ledger.sequences(ticket) for ticket in tickets]
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(s, tag)) for s, tag in ((svc, "a"), (other, "b"))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    assert not errors, errors
    total = 2 * rounds * per_batch
    assert svc.ledger.size == start + total
    claimed = sorted(seq for ranges in results.values() for r in ranges for seq in r)
    assert claimed == list(range(start, start + total))
    entries = svc.ledger.entries(range(start, start + total))
    for tag, ranges in results.items():
        for r, seqs in enumerate(ranges):
            assert [entries[s - start].reason for s in seqs] == [f"{tag}{r} #{i}" for i in range(per_batch)]
    svc.ledger.checkpoint()
    report = svc.ledger.audit()
    assert report.ok, report.problems
    assert report.size == start + total


# -- paged receipts ------------------------------------------------------------------------


def test_a_complete_receipt_pages_through_every_entry_against_one_checkpoint(svc: Consentune) -> None:
    for k in range(6):
        svc.ledger.append(
            [UsageRecord("service:pop", "stream", RECOMMEND, "trk_pop" if i % 3 else "trk_rest", "allow", f"{k}.{i}", 1)
             for i in range(12)]
        )  # fmt: skip
    expected = [e.sequence for e in svc.ledger.entries(range(svc.ledger.size)) if e.track == "trk_pop"]
    assert len(expected) == 48
    pages = svc.ledger.receipt_pages(track="trk_pop", page_size=10)
    first = next(pages)
    svc.ledger.append(_records(5, tag="meanwhile"))  # the log grows between pages; the receipt stays on one size
    svc.ledger.append([UsageRecord("service:pop", "stream", RECOMMEND, "trk_pop", "allow", "later", 1)])
    collected = [first, *pages]
    assert len(collected) == 5
    whole = verify_receipt_pages(collected, verifier_key=svc.ledger.verifier_key)
    assert (whole.count, whole.first, whole.last, whole.pages) == (48, expected[0], expected[-1], 5)
    seen = [
        e.sequence for page in collected for e in verify_receipt(page, verifier_key=svc.ledger.verifier_key).entries
    ]
    assert seen == expected
    fresh = list(svc.ledger.receipt_pages(track="trk_pop", page_size=100))
    assert verify_receipt_pages(fresh, verifier_key=svc.ledger.verifier_key).count == 49
