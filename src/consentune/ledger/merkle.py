"""Merkle tree hashing, proofs and verification as defined by RFC 9162 §2.1.

Storage model: every *perfect* subtree hash is kept under the key
``(level, index)``; it covers leaves ``[index * 2**level, (index + 1) * 2**level)``
and level 0 holds the leaf hashes. Any Merkle Tree Hash (MTH) of a range that
starts on a suitable boundary is a right fold of a few perfect subtrees, so every
proof is computed from one batch lookup and never needs a node that is not perfect.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from consentune.errors import InvalidInput, LedgerError, VerificationFailed

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
NewNode = tuple[int, int, bytes]

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Hash a leaf; the 0x00 prefix keeps leaves distinct from interior nodes."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children; the 0x01 prefix prevents second-preimage splicing."""
    return _sha256(b"\x01" + left + right).digest()


class NodeSource(Protocol):
    """Where stored perfect-subtree hashes come from (database, memory, ...)."""

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Return the hashes for ``keys``; a missing key is simply absent."""
        ...


class MemoryNodeSource:
    """Dict-backed :class:`NodeSource` for tests and in-memory logs."""

    def __init__(self, nodes: Mapping[NodeKey, bytes] | None = None) -> None:
        self.nodes: dict[NodeKey, bytes] = dict(nodes or {})

    def add(self, new_nodes: Iterable[NewNode]) -> None:
        """Store the ``(level, index, hash)`` triples returned by :class:`CompactRange`."""
        for level, index, digest in new_nodes:
            self.nodes[(level, index)] = digest

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Look up ``keys``; unknown keys are left out of the result."""
        return {key: self.nodes[key] for key in keys if key in self.nodes}


class CompactRange:
    """The right edge of a growing tree: enough to append and to compute the root.

    Holds one hash per set bit of ``size`` (largest subtree first), so memory and
    the serialized form are O(log n).
    """

    __slots__ = ("_edge", "size")

    def __init__(self) -> None:
        self.size = 0
        self._edge: list[bytes] = []

    def append(self, leaf: bytes) -> list[NewNode]:
        """Append one leaf hash; return every perfect node it completes, leaf first."""
        if len(leaf) != HASH_SIZE:
            raise InvalidInput(
                f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf)}",
                hint="pass leaf_hash(entry_bytes), not the entry itself",
            )
        index = self.size
        edge = self._edge
        created = [(0, index, leaf)]
        digest = leaf
        level = 0
        while (index >> level) & 1:
            digest = _sha256(b"\x01" + edge.pop() + digest).digest()
            level += 1
            created.append((level, index >> level, digest))
        edge.append(digest)
        self.size = index + 1
        return created

    def extend(self, leaves: Iterable[bytes]) -> list[NewNode]:
        """Append several leaf hashes; return all completed nodes in order."""
        created: list[NewNode] = []
        for leaf in leaves:
            created.extend(self.append(leaf))
        return created

    def root(self) -> bytes:
        """Return the RFC 9162 MTH of the whole tree (``EMPTY_ROOT`` when empty)."""
        return _fold(self._edge) if self._edge else EMPTY_ROOT

    def to_bytes(self) -> bytes:
        """Serialize as 8-byte big-endian size followed by the right-edge hashes."""
        return self.size.to_bytes(8, "big") + b"".join(self._edge)

    @classmethod
    def from_bytes(cls, data: bytes) -> CompactRange:
        """Rebuild a range written by :meth:`to_bytes`, checking its length."""
        if len(data) < 8:
            raise InvalidInput(
                f"compact range needs at least 8 bytes, got {len(data)}",
                hint="pass the exact value written by CompactRange.to_bytes()",
            )
        size = int.from_bytes(data[:8], "big")
        body = data[8:]
        if len(body) != size.bit_count() * HASH_SIZE:
            raise InvalidInput(
                f"compact range of size {size} needs {size.bit_count()} hashes, got {len(body)} bytes",
                hint="the stored head is truncated or corrupted",
            )
        compact = cls()
        compact.size = size
        compact._edge = [body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        return compact


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Right-fold perfect subtree hashes (largest first) into one MTH."""
    digest = hashes[-1]
    for left in reversed(hashes[:-1]):
        digest = node_hash(left, digest)
    return digest


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def range_keys(start: int, end: int) -> list[NodeKey]:
    """Perfect subtrees, largest first, whose right fold is MTH(D[start:end]).

    ``start`` must be a multiple of the largest power of two below ``end - start``,
    which holds for every range visited by the RFC recursion.
    """
    keys = []
    position = start
    for level in range((end - start).bit_length() - 1, -1, -1):
        if (end - start) >> level & 1:
            keys.append((level, position >> level))
            position += 1 << level
    return keys


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Ranges whose MTHs form PATH(index, D[0:size]), leaf side first."""
    ranges = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Ranges whose MTHs form PROOF(old_size, D[0:new_size]), in RFC order."""
    ranges = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        ranges.append((start, end))
    return ranges[::-1]


def _hash_ranges(ranges: Sequence[tuple[int, int]], source: NodeSource) -> list[bytes]:
    """Compute MTH for each range from one batch lookup of perfect subtrees."""
    per_range = [range_keys(start, end) for start, end in ranges]
    wanted = sorted({key for keys in per_range for key in keys})
    found = source.get_nodes(wanted) if wanted else {}
    missing = [key for key in wanted if key not in found]
    if missing:
        raise LedgerError(
            f"node store lacks {len(missing)} perfect subtree(s), e.g. {missing[0]}",
            hint="the stored tree is smaller than the requested size or was not fully written",
        )
    return [_fold([found[key] for key in keys]) for keys in per_range]


def _check_size(name: str, value: int) -> None:
    if value < 0:
        raise InvalidInput(f"{name} must be >= 0, got {value}", hint="tree sizes count leaves")


def inclusion_proof(index: int, size: int, source: NodeSource) -> list[bytes]:
    """Return the audit path for leaf ``index`` in the tree of ``size`` leaves."""
    _check_size("size", size)
    if not 0 <= index < size:
        raise InvalidInput(
            f"leaf index {index} is outside a tree of size {size}",
            hint="use a checkpoint whose size is greater than the leaf index",
        )
    return _hash_ranges(_inclusion_ranges(index, size), source)


def consistency_proof(old_size: int, new_size: int, source: NodeSource) -> list[bytes]:
    """Return the proof that the ``old_size`` tree is a prefix of the ``new_size`` tree."""
    _check_size("old_size", old_size)
    if not old_size <= new_size:
        raise InvalidInput(
            f"old_size {old_size} is larger than new_size {new_size}",
            hint="the older checkpoint must come first",
        )
    if old_size in (0, new_size):
        return []
    return _hash_ranges(_consistency_ranges(old_size, new_size), source)


def root_at(size: int, source: NodeSource) -> bytes:
    """Return MTH of the first ``size`` leaves (``EMPTY_ROOT`` for 0)."""
    _check_size("size", size)
    if size == 0:
        return EMPTY_ROOT
    return _hash_ranges([(0, size)], source)[0]


def _fail(message: str) -> VerificationFailed:
    return VerificationFailed(message, hint="the proof, root or sizes do not belong together")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, element in enumerate(proof):
        if len(element) != HASH_SIZE:
            raise _fail(f"proof element {position} is {len(element)} bytes, not {HASH_SIZE}")


def verify_inclusion(*, leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check an audit path (RFC 9162 §2.1.3.2); raise VerificationFailed if it is wrong."""
    if not 0 <= index < size:
        raise _fail(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE or len(root) != HASH_SIZE:
        raise _fail(f"leaf hash and root must be {HASH_SIZE} bytes each")
    _check_proof_hashes(proof)
    fn, sn, digest = index, size - 1, leaf_hash
    for sibling in proof:
        if sn == 0:
            raise _fail(f"inclusion proof is too long ({len(proof)} elements)")
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = node_hash(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise _fail(f"inclusion proof is too short ({len(proof)} elements)")
    if digest != root:
        raise _fail(f"inclusion proof for leaf {index} does not lead to the root")


def verify_consistency(
    *, old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 §2.1.4.2); raise VerificationFailed if wrong.

    A tree of size 0 is rejected as the old tree: it is consistent with everything,
    so the proof would say nothing and a caller relying on it is likely confused.
    """
    if old_size <= 0 or new_size < old_size:
        raise _fail(f"cannot prove consistency from size {old_size} to size {new_size}")
    if old_size == new_size:
        if proof:
            raise _fail("equal sizes need an empty consistency proof")
        if old_root != new_root:
            raise _fail("roots differ for equal tree sizes")
        return
    if not proof:
        raise _fail("consistency proof is empty")
    _check_proof_hashes(proof)
    _verify_consistency_path(old_size, new_size, old_root, new_root, proof)


def _verify_consistency_path(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    first = second = path[0]
    for element in path[1:]:
        if sn == 0:
            raise _fail(f"consistency proof is too long ({len(proof)} elements)")
        if fn & 1 or fn == sn:
            first = node_hash(element, first)
            second = node_hash(element, second)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            second = node_hash(second, element)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise _fail(f"consistency proof is too short ({len(proof)} elements)")
    if first != old_root or second != new_root:
        raise _fail(f"consistency proof from size {old_size} to {new_size} does not match")


# -- multi-leaf proofs ---------------------------------------------------------------------
#
# MPROOF(I, D[a:b]) for a non-empty set I of leaf indices inside [a, b):
#   if I covers every index of [a, b):  []
#   else, with k = split(b - a), L = I ∩ [a, a+k), R = I ∩ [a+k, b):
#     (MPROOF(L, D[a:a+k]) if L else [MTH(D[a:a+k])]) ++ (MPROOF(R, D[a+k:b]) if R else [MTH(D[a+k:b])])
# One hash per maximal subtree without a listed leaf, left to right: for k leaves
# in a tree of n that is at most k * log2(n / k) + 2 hashes, and for dense leaves far fewer.


def multiproof_ranges(indices: Sequence[int], size: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs form MPROOF(indices, D[0:size]), in order.

    ``indices`` must be strictly increasing and inside ``[0, size)``.
    """
    _check_indices(indices, size, InvalidInput)
    out: list[tuple[int, int]] = []

    def walk(lo: int, hi: int, start: int, end: int) -> None:
        if hi - lo == end - start:
            return
        k = _split(end - start)
        mid = bisect_left(indices, start + k, lo, hi)
        if mid > lo:
            walk(lo, mid, start, start + k)
        else:
            out.append((start, start + k))
        if hi > mid:
            walk(mid, hi, start + k, end)
        else:
            out.append((start + k, end))

    walk(0, len(indices), 0, size)
    return out


def multiproof(indices: Sequence[int], size: int, source: NodeSource) -> list[bytes]:
    """MPROOF(indices, D[0:size]) from stored perfect subtrees (one batch lookup)."""
    ranges = multiproof_ranges(indices, size)
    return _hash_ranges(ranges, source) if ranges else []


def _check_indices(indices: Sequence[int], size: int, error: type[InvalidInput] | type[VerificationFailed]) -> None:
    if not indices:
        raise error("a multi-leaf proof needs at least one leaf", hint="list the entries it proves")
    previous = -1
    for index in indices:
        if not previous < index < size:
            raise error(
                f"leaf index {index} is out of order or outside a tree of size {size}",
                hint="indices must strictly increase and be below the tree size",
            )
        previous = index


def _complete_mth(hashes: Sequence[bytes]) -> bytes:
    """MTH of a complete run of hashes (every leaf present), hashing perfect parts level by level."""
    n = len(hashes)
    if n & (n - 1) == 0:
        level = list(hashes)
        sha = _sha256
        while len(level) > 1:
            level = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        return level[0]
    k = _split(n)
    return node_hash(_complete_mth(hashes[:k]), _complete_mth(hashes[k:]))


def root_from_multiproof(
    *, indices: Sequence[int], leaf_hashes: Sequence[bytes], size: int, proof: Sequence[bytes]
) -> bytes:
    """Recompute the root of a ``size``-leaf tree from listed leaves and their MPROOF.

    Raises
    ------
    VerificationFailed
        If the indices are not strictly increasing inside the tree, a hash has the
        wrong size, or the proof has too few or too many hashes.
    """
    _check_indices(indices, size, VerificationFailed)
    if len(leaf_hashes) != len(indices) or any(len(h) != HASH_SIZE for h in leaf_hashes):
        raise _fail("every listed leaf needs one 32-byte hash")
    _check_proof_hashes(proof)
    supply = iter(proof)  # missing subtrees, in the order the walk meets them (left to right)
    sha = _sha256

    def given() -> bytes:
        digest = next(supply, None)
        if digest is None:
            raise _fail(f"multi-leaf proof is too short ({len(proof)} hashes)")
        return digest

    def walk(lo: int, hi: int, start: int, end: int) -> bytes:
        if hi - lo == end - start:
            return _complete_mth(leaf_hashes[lo:hi])
        split = start + (1 << ((end - start - 1).bit_length() - 1))
        mid = bisect_left(indices, split, lo, hi)
        left = walk(lo, mid, start, split) if mid > lo else given()
        right = walk(mid, hi, split, end) if hi > mid else given()
        return sha(b"\x01" + left + right).digest()

    root = walk(0, len(indices), 0, size)
    if next(supply, None) is not None:
        raise _fail(f"multi-leaf proof is too long ({len(proof)} hashes)")
    return root


__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MemoryNodeSource",
    "NodeSource",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "multiproof",
    "multiproof_ranges",
    "node_hash",
    "range_keys",
    "root_at",
    "root_from_multiproof",
    "verify_consistency",
    "verify_inclusion",
]
