"""Merkle proofs against a direct transcription of the RFC 9162 §2.1 definitions."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentune.errors import InvalidInput, LedgerError, VerificationFailed
from consentune.ledger import (
    EMPTY_ROOT,
    CompactRange,
    MemoryNodeSource,
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

MAX_SIZE = 300


def _leaves(size: int) -> list[bytes]:
    return [leaf_hash(f"leaf-{i}".encode()) for i in range(size)]


@cache
def _reference(size: int) -> _Reference:
    return _Reference(_leaves(size))


class _Reference:
    """The RFC's recursive MTH, PATH and PROOF, written for clarity, not speed."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self._memo: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def split(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def mth(self, lo: int, hi: int) -> bytes:
        if (lo, hi) not in self._memo:
            n = hi - lo
            if n == 0:
                value = hashlib.sha256(b"").digest()
            elif n == 1:
                value = self.leaves[lo]
            else:
                k = self.split(n)
                value = node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))
            self._memo[(lo, hi)] = value
        return self._memo[(lo, hi)]

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = self.split(n)
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def subproof(self, m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [self.mth(lo, hi)]
        k = self.split(n)
        if m <= k:
            return [*self.subproof(m, lo, lo + k, complete), self.mth(lo + k, hi)]
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]


class CountingSource(MemoryNodeSource):
    """Counts batch lookups so tests can insist on one query per proof."""

    calls = 0

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        self.calls += 1
        return super().get_nodes(keys)


@cache
def _tree(size: int) -> CountingSource:
    source = CountingSource()
    compact = CompactRange()
    source.add(compact.extend(_leaves(size)))
    return source


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@settings(max_examples=25, deadline=None)
@given(size=sizes, data=st.data())
def test_proofs_match_rfc_definitions(size: int, data: st.DataObject) -> None:
    ref, source = _reference(size), _tree(size)
    smaller = data.draw(st.integers(min_value=1, max_value=size), label="smaller size")
    for tree_size in {size, smaller}:
        for index in range(tree_size):
            proof = inclusion_proof(index, tree_size, source)
            assert proof == ref.path(index, 0, tree_size)
            verify_inclusion(
                leaf_hash=ref.leaves[index],
                index=index,
                size=tree_size,
                proof=proof,
                root=ref.mth(0, tree_size),
            )
    for old in range(1, size + 1):
        proof = consistency_proof(old, size, source)
        assert proof == ref.subproof(old, 0, size, True)
        assert root_at(old, source) == ref.mth(0, old)
        verify_consistency(
            old_size=old,
            new_size=size,
            old_root=ref.mth(0, old),
            new_root=ref.mth(0, size),
            proof=proof,
        )


@settings(max_examples=20, deadline=None)
@given(size=sizes)
def test_compact_range_root_and_round_trip(size: int) -> None:
    ref = _reference(size)
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT
    for count, leaf in enumerate(ref.leaves, start=1):
        compact.append(leaf)
        assert compact.size == count
        assert compact.root() == ref.mth(0, count)
        restored = CompactRange.from_bytes(compact.to_bytes())
        assert (restored.size, restored.root()) == (count, compact.root())
        assert restored.to_bytes() == compact.to_bytes()


@settings(max_examples=20, deadline=None)
@given(size=sizes, split=st.integers(min_value=0, max_value=MAX_SIZE))
def test_restored_range_emits_every_perfect_node_once(size: int, split: int) -> None:
    split = min(split, size)
    leaves = _leaves(size)
    first = CompactRange()
    nodes = first.extend(leaves[:split])
    nodes += CompactRange.from_bytes(first.to_bytes()).extend(leaves[split:])
    keys = [(level, index) for level, index, _ in nodes]
    assert len(keys) == len(set(keys)) == sum(size >> level for level in range(size.bit_length()))
    assert dict(zip(keys, (h for _, _, h in nodes), strict=True)) == _tree(size).nodes


def _corrupt(proof: list[bytes], kind: str, position: int, bit: int) -> list[bytes]:
    if kind == "extra":
        return [*proof[:position], bytes(32), *proof[position:]]
    position %= len(proof)
    if kind == "drop":
        return proof[:position] + proof[position + 1 :]
    flipped = bytearray(proof[position])
    flipped[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:position], bytes(flipped), *proof[position + 1 :]]


corruptions = st.tuples(
    st.sampled_from(["flip", "drop", "extra"]),
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=255),
)


@settings(max_examples=300, deadline=None)
@given(size=sizes, data=st.data(), corruption=corruptions)
def test_corrupted_inclusion_proof_fails(size: int, data: st.DataObject, corruption: tuple[str, int, int]) -> None:
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    proof = inclusion_proof(index, size, _tree(size))
    kind, position, bit = corruption
    if not proof and kind != "extra":
        return
    with pytest.raises(VerificationFailed):
        verify_inclusion(
            leaf_hash=_reference(size).leaves[index],
            index=index,
            size=size,
            proof=_corrupt(proof, kind, position, bit),
            root=root_at(size, _tree(size)),
        )


@settings(max_examples=300, deadline=None)
@given(size=st.integers(min_value=2, max_value=MAX_SIZE), data=st.data(), corruption=corruptions)
def test_corrupted_consistency_proof_fails(size: int, data: st.DataObject, corruption: tuple[str, int, int]) -> None:
    old = data.draw(st.integers(min_value=1, max_value=size - 1), label="old size")
    ref = _reference(size)
    proof = _corrupt(consistency_proof(old, size, _tree(size)), *corruption)
    with pytest.raises(VerificationFailed):
        verify_consistency(
            old_size=old,
            new_size=size,
            old_root=ref.mth(0, old),
            new_root=ref.mth(0, size),
            proof=proof,
        )


def test_rfc_constants() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


def test_each_proof_is_one_batch_lookup() -> None:
    source = _tree(MAX_SIZE)
    before = source.calls
    inclusion_proof(123, 257, source)
    consistency_proof(100, 257, source)
    root_at(299, source)
    assert source.calls - before == 3


def test_trivial_sizes_need_no_lookup() -> None:
    source = CountingSource()
    assert root_at(0, source) == EMPTY_ROOT
    assert consistency_proof(0, 5, source) == []
    assert consistency_proof(5, 5, source) == []
    assert source.calls == 0


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (inclusion_proof, (5, 5)),
        (inclusion_proof, (-1, 5)),
        (inclusion_proof, (0, -1)),
        (consistency_proof, (6, 5)),
        (consistency_proof, (-1, 5)),
        (root_at, (-1,)),
    ],
)
def test_bad_arguments_raise_invalid_input(call: object, args: tuple[int, ...]) -> None:
    with pytest.raises(InvalidInput) as raised:
        call(*args, _tree(8))  # type: ignore[operator]
    assert raised.value.hint


def test_missing_nodes_raise_ledger_error() -> None:
    with pytest.raises(LedgerError, match="lacks"):
        root_at(20, _tree(10))


def test_compact_range_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput):
        CompactRange().append(b"short")
    with pytest.raises(InvalidInput):
        CompactRange.from_bytes(b"\x00" * 7)
    with pytest.raises(InvalidInput):
        CompactRange.from_bytes((3).to_bytes(8, "big") + bytes(32))


def test_consistency_from_empty_tree_is_rejected() -> None:
    with pytest.raises(VerificationFailed):
        verify_consistency(old_size=0, new_size=3, old_root=EMPTY_ROOT, new_root=EMPTY_ROOT, proof=[])


def _reference_multiproof(ref: _Reference, indices: set[int], lo: int, hi: int) -> list[bytes]:
    """MPROOF as docs/ledger.md §4.3 defines it, transcribed literally."""
    if all(i in indices for i in range(lo, hi)):
        return []
    k = ref.split(hi - lo)
    left = {i for i in indices if i < lo + k}
    right = indices - left
    first = _reference_multiproof(ref, left, lo, lo + k) if left else [ref.mth(lo, lo + k)]
    second = _reference_multiproof(ref, right, lo + k, hi) if right else [ref.mth(lo + k, hi)]
    return first + second


@settings(max_examples=60, deadline=None)
@given(size=sizes, data=st.data())
def test_multiproof_matches_its_definition_and_proves_the_root(size: int, data: st.DataObject) -> None:
    ref, source = _reference(size), _tree(size)
    chosen = sorted(data.draw(st.sets(st.integers(0, size - 1), min_size=1, max_size=size), label="leaves"))
    proof = multiproof(chosen, size, source)
    assert proof == _reference_multiproof(ref, set(chosen), 0, size)
    leaves = [ref.leaves[i] for i in chosen]
    assert root_from_multiproof(indices=chosen, leaf_hashes=leaves, size=size, proof=proof) == ref.mth(0, size)
    if len(chosen) == 1:  # one leaf: the audit path's hashes, listed left to right instead of leaf first
        assert sorted(proof) == sorted(ref.path(chosen[0], 0, size))
    if proof:
        with pytest.raises(VerificationFailed):
            root_from_multiproof(indices=chosen, leaf_hashes=leaves, size=size, proof=proof[:-1])
        with pytest.raises(VerificationFailed):
            root_from_multiproof(indices=chosen, leaf_hashes=leaves, size=size, proof=[*proof, proof[0]])
        damaged = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
        assert root_from_multiproof(indices=chosen, leaf_hashes=leaves, size=size, proof=damaged) != ref.mth(0, size)
    wrong = [leaf_hash(b"forged"), *leaves[1:]]
    assert root_from_multiproof(indices=chosen, leaf_hashes=wrong, size=size, proof=proof) != ref.mth(0, size)


def test_multiproof_rejects_unsorted_or_outside_indices() -> None:
    source = _tree(10)
    for bad in ([], [3, 3], [4, 2], [10], [-1]):
        with pytest.raises(InvalidInput):
            multiproof(bad, 10, source)
        with pytest.raises(VerificationFailed):
            root_from_multiproof(indices=bad, leaf_hashes=[bytes(32)] * len(bad), size=10, proof=[])
