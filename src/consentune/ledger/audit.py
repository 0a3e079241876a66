"""Incremental audit: from the last audited checkpoint to the head, in bounded memory.

The last clean audit left a mark: a signed checkpoint ``(a, root_a)``.  The
audit re-verifies its signature, rebuilds the compact range at ``a`` from the
stored perfect subtrees (it must fold to ``root_a``), then streams the entries
``a .. n-1`` page by page: each must be canonical, carry its sequence and its
stored leaf hash, and every perfect subtree it completes must equal the stored
node.  Every checkpoint in ``(a, n]`` must be validly signed over the recomputed
root, the stored tree must prove consistency from ``a`` to the newest checkpoint,
the stored head must match, and published tiles must match the stored nodes.
Memory holds one page of rows and nodes plus O(log n) hashes, whatever ``n``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from consentune.errors import ConsentuneError
from consentune.ledger.checkpoint import verify_checkpoint
from consentune.ledger.entry_scan import entry_sequence
from consentune.ledger.merkle import (
    CompactRange,
    NewNode,
    consistency_proof,
    leaf_hash,
    range_keys,
    verify_consistency,
)
from consentune.ledger.tiles import TILE_HEIGHT, TILE_WIDTH, TileStore, changed_tiles, decode_bundle, tile_path

if TYPE_CHECKING:
    from consentune.ports import LedgerRepo, StoredCheckpoint

PAGE = 64 * TILE_WIDTH  # entries per page: whole level-0 tiles
_TILE_GROUP = 64


@dataclass(slots=True)
class AuditReport:
    size: int = 0
    checkpoints_checked: int = 0
    nodes_checked: int = 0
    entries_checked: int = 0
    start: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < 100:
            self.problems.append(text)


def audit_row(seq: int, data: bytes, stored_leaf: bytes, compact: CompactRange, report: AuditReport) -> list[NewNode]:
    """Check one stored entry against the next position of ``compact``; append it; return new nodes."""
    expected = compact.size
    if seq != expected:
        report.problem(f"entry {expected} is missing (next stored row is {seq})")
    try:
        sequence = entry_sequence(data)
        if sequence != seq:
            report.problem(f"row {seq} holds entry with sequence {sequence} (reordered)")
    except ConsentuneError as exc:
        report.problem(f"row {seq} is not a canonical entry: {exc.message}")
    except RecursionError:
        report.problem(f"row {seq} is not a canonical entry: nested too deeply")
    leaf = leaf_hash(data)
    if leaf != stored_leaf:
        report.problem(f"row {seq}: stored leaf hash does not match its entry (changed)")
    return compact.append(leaf)


def _start(repo: LedgerRepo, verifier_key: str, report: AuditReport) -> tuple[CompactRange, StoredCheckpoint | None]:
    """The compact range at the last audited checkpoint, checked against its signed root."""
    mark = repo.last_audit()
    if mark is None or mark.size == 0:
        return CompactRange(), None
    try:
        parsed = verify_checkpoint(mark.note, verifier_key)
    except ConsentuneError as exc:
        report.problem(f"last audited checkpoint {mark.size}: signature check failed: {exc.message}")
        return CompactRange(), None
    keys = range_keys(0, parsed.size)
    found = repo.get_nodes(keys)
    if any(key not in found for key in keys):
        report.problem(f"stored tree lacks the right edge of audited size {parsed.size}")
        return CompactRange(), None
    state = parsed.size.to_bytes(8, "big") + b"".join(found[key] for key in keys)
    compact = CompactRange.from_bytes(state)
    if compact.root() != parsed.root_hash:
        report.problem(f"stored nodes below audited size {parsed.size} no longer fold to its signed root (tampered)")
        return CompactRange(), None
    return compact, mark


def _check_nodes(repo: LedgerRepo, created: list[NewNode], report: AuditReport) -> None:
    """Compare freshly computed perfect subtrees with the stored ones, one range query per level."""
    by_level: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    for level, index, digest in created:
        by_level[level].append((index, digest))
    for level, items in by_level.items():
        items.sort()
        first = items[0][0]
        try:
            stored = repo.node_range(level, first, items[-1][0] + 1)
        except ConsentuneError as exc:
            report.problem(f"stored nodes at level {level} from {first}: {exc.message}")
            continue
        for index, digest in items:
            if stored[index - first] != digest:
                report.problem(f"stored node ({level}, {index}) does not match the entries")
        report.nodes_checked += len(items)


def _check_checkpoints(
    pending: list[StoredCheckpoint], compact: CompactRange, verifier_key: str, report: AuditReport
) -> StoredCheckpoint | None:
    """Check the checkpoints at exactly ``compact.size``; return the last good one."""
    good = None
    while pending and pending[-1].size == compact.size:
        cp = pending.pop()
        report.checkpoints_checked += 1
        try:
            parsed = verify_checkpoint(cp.note, verifier_key)
        except ConsentuneError as exc:
            report.problem(f"checkpoint {cp.size}: signature check failed: {exc.message}")
            continue
        root = compact.root()
        if parsed.size != cp.size or parsed.root_hash != root or cp.root_hash != root:
            report.problem(f"checkpoint {cp.size}: signed root does not match the stored entries (tampered)")
            continue
        good = cp
    return good


def _published_tile(tiles: TileStore, level: int | str, index: int, width: int) -> bytes | None:
    """The tile as of ``width``: its partial file, or the prefix of the full tile that replaced it."""
    published = tiles.read(tile_path(level, index, width))
    if published is None and width < TILE_WIDTH:
        full = tiles.read(tile_path(level, index))
        if full is not None:
            published = full if level == "entries" else full[: width * 32]
    return published


def _check_tiles(repo: LedgerRepo, tiles: TileStore, old_size: int, new_size: int, report: AuditReport) -> None:
    """Every published tile and entry bundle that changed in ``[old_size, new_size)`` matches the stored log.

    Reads the stored side a group of tiles at a time (one query per group), never the whole range.
    """
    group: list[tuple[int, int, int]] = []
    for tile in changed_tiles(old_size, new_size):
        if group and (tile[0] != group[0][0] or len(group) == _TILE_GROUP):
            _check_tile_group(repo, tiles, group, report)
            group = []
        group.append(tile)
    if group:
        _check_tile_group(repo, tiles, group, report)


def _check_tile_group(
    repo: LedgerRepo, tiles: TileStore, group: list[tuple[int, int, int]], report: AuditReport
) -> None:
    level = group[0][0]
    first = group[0][1] * TILE_WIDTH
    stop = group[-1][1] * TILE_WIDTH + group[-1][2]
    hashes = b"".join(repo.node_range(TILE_HEIGHT * level, first, stop))
    rows = (
        [r.data for page in repo.iter_ledger(start=first, stop=stop, batch=stop - first) for r in page]
        if level == 0
        else []
    )
    for _, index, width in group:
        offset = index * TILE_WIDTH - first
        if _published_tile(tiles, level, index, width) != hashes[offset * 32 : (offset + width) * 32]:
            report.problem(f"published tile {tile_path(level, index, width)} does not match the stored tree")
        if level == 0:
            bundle = _published_tile(tiles, "entries", index, width)
            entries = None if bundle is None else decode_bundle(bundle)[:width]
            if entries != rows[offset : offset + width]:
                report.problem(f"published entry bundle {tile_path('entries', index, width)} does not match the log")


def audit_incremental(repo: LedgerRepo, verifier_key: str, *, tiles: TileStore | None = None) -> AuditReport:
    """Audit everything added since the last clean audit; on success, move the mark forward."""
    report = AuditReport()
    compact, mark = _start(repo, verifier_key, report)
    report.start = compact.size
    size, state = repo.ledger_head()
    pending = list(reversed(repo.list_checkpoints(min_size=compact.size + 1, max_size=size)))
    newest = None
    for page in repo.iter_ledger(start=compact.size, batch=PAGE):
        created: list[NewNode] = []
        for row in page:
            created.extend(audit_row(row.seq, row.data, row.leaf_hash, compact, report))
            if pending and pending[-1].size == compact.size:
                newest = _check_checkpoints(pending, compact, verifier_key, report) or newest
        report.entries_checked += len(page)
        _check_nodes(repo, created, report)
    report.size = compact.size
    if compact.size != size or compact.to_bytes() != (state or CompactRange().to_bytes()):
        report.problem(f"stored head (size {size}) does not match the {compact.size} entries")
    for cp in pending:
        report.problem(f"checkpoint at size {cp.size} is beyond the {compact.size} stored entries")
    if mark is not None and newest is not None:
        proof = consistency_proof(mark.size, newest.size, repo)
        try:
            verify_consistency(
                old_size=mark.size,
                new_size=newest.size,
                old_root=mark.root_hash,
                new_root=newest.root_hash,
                proof=proof,
            )
        except ConsentuneError as exc:
            report.problem(f"stored tree is not consistent from {mark.size} to {newest.size}: {exc.message}")
    if tiles is not None:
        _check_tiles(repo, tiles, report.start, _published(tiles, verifier_key, report), report)
    if report.ok and newest is not None:
        repo.add_audit(newest)
    return report


def _published(tiles: TileStore, verifier_key: str, report: AuditReport) -> int:
    data = tiles.read("checkpoint")
    if data is None:
        return 0
    try:
        return verify_checkpoint(data.decode("utf-8"), verifier_key).size
    except (ConsentuneError, UnicodeDecodeError) as exc:
        report.problem(f"published checkpoint does not verify: {exc}")
        return 0


__all__ = ["AuditReport", "audit_incremental", "audit_row"]
