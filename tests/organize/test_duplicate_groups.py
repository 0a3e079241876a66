"""Duplicate groups carry their kind and the weakest link's score."""

from __future__ import annotations

from consentune.organize.duplicates import DuplicateMatch, describe_groups
from consentune.types import TrackId

A, B, C, D, E = (TrackId(f"trk_{c}") for c in "abcde")


def test_kind_and_weakest_score_per_group() -> None:
    links = [
        (A, DuplicateMatch(B, "exact", 1.0)),
        (B, DuplicateMatch(C, "near", 0.8)),
        (C, DuplicateMatch(A, "near", 0.9)),
        (D, DuplicateMatch(E, "near", 0.7)),
    ]
    groups = describe_groups(links)
    assert [(g.tracks, g.kind, g.score) for g in groups] == [([A, B, C], "mixed", 0.8), ([D, E], "near", 0.7)]


def test_exact_only_groups_score_one() -> None:
    groups = describe_groups([(A, DuplicateMatch(B, "exact", 1.0)), (A, DuplicateMatch(C, "exact", 1.0))])
    assert [(g.tracks, g.kind, g.score) for g in groups] == [([A, B, C], "exact", 1.0)]
    assert describe_groups([]) == []


def test_a_pair_linked_exactly_and_near_is_exact() -> None:
    links = [(A, DuplicateMatch(B, "exact", 1.0)), (B, DuplicateMatch(A, "near", 0.6))]
    assert [(g.tracks, g.kind, g.score) for g in describe_groups(links)] == [([A, B], "exact", 1.0)]
