"""Duplicate groups: exact (same original bytes) and near (re-encodes, trims, gain, small speed changes).

Exact duplicates come from the catalogue: originals are stored
content-addressed, so two tracks with the same SHA-256 are the same file
uploaded twice (by different accounts; one artist's re-upload is already
idempotent).  Near duplicates need an audio fingerprint; any engine that
implements :class:`NearDuplicateFinder` plugs in (the content-identification
fingerprints are meant to).  Without one, only exact groups are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from consentune.types import TrackId


@dataclass(frozen=True, slots=True)
class DuplicateMatch:
    track: TrackId
    kind: str  # "exact" or "near"
    score: float  # 1.0 for exact; the finder's confidence for near


class NearDuplicateFinder(Protocol):
    """Finds catalogue tracks that are the same recording as ``track`` in another encoding or edit.

    ``candidates`` limits the answer when given (``None``: any track); the
    caller still checks every returned track against ``organize`` consent.
    """

    def near_duplicates(
        self, track: TrackId, *, candidates: Sequence[TrackId] | None, actor: str
    ) -> list[DuplicateMatch]: ...


def group_pairs(tracks: Sequence[TrackId], pairs: Sequence[tuple[TrackId, TrackId]]) -> list[list[TrackId]]:
    """Connected components (size ≥ 2) of the duplicate relation, each sorted, largest first."""
    parent = {t: t for t in tracks}

    def find(t: TrackId) -> TrackId:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for a, b in pairs:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[TrackId, list[TrackId]] = {}
    for t in parent:
        groups.setdefault(find(t), []).append(t)
    return sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g[0]))


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Tracks that are one recording: ``kind`` "exact", "near" or "mixed" (both kinds of link);
    ``score`` is the weakest link's (1.0 when every link is exact)."""

    tracks: list[TrackId]
    kind: str
    score: float


def describe_groups(links: Sequence[tuple[TrackId, DuplicateMatch]]) -> list[DuplicateGroup]:
    """Group ``(track, match)`` links into connected components, each with its kind and weakest score.

    A pair linked twice (the near finder also sees exact copies) counts once, by its strongest link.
    """
    best: dict[frozenset[TrackId], tuple[TrackId, DuplicateMatch]] = {}
    for track, match in links:
        pair = frozenset((track, match.track))
        if pair not in best or _strength(match) > _strength(best[pair][1]):
            best[pair] = (track, match)
    members = sorted({t for pair in best for t in pair})
    groups = group_pairs(members, [(track, match.track) for track, match in best.values()])
    group_of = {t: index for index, group in enumerate(groups) for t in group}
    kinds: list[set[str]] = [set() for _ in groups]
    scores = [1.0] * len(groups)
    for track, match in best.values():
        index = group_of[track]
        kinds[index].add(match.kind)
        scores[index] = min(scores[index], match.score)
    return [
        DuplicateGroup(group, next(iter(kind)) if len(kind) == 1 else "mixed", score)
        for group, kind, score in zip(groups, kinds, scores, strict=True)
    ]


def _strength(match: DuplicateMatch) -> tuple[bool, float]:
    return (match.kind == "exact", match.score)


__all__ = ["DuplicateGroup", "DuplicateMatch", "NearDuplicateFinder", "describe_groups", "group_pairs"]
