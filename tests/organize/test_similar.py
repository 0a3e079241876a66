"""The similarity index: both backends return the true neighbours; removal is immediate."""

from __future__ import annotations

import numpy as np
import pytest

from consentune.errors import InvalidInput
from consentune.organize import SimilarityIndex
from consentune.types import TrackId


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n // 5, dim)) * 3.0
    return (np.repeat(centres, 5, axis=0) + rng.normal(size=(n, dim)) * 0.3).astype(np.float32)


@pytest.mark.parametrize("ann_threshold", [10**9, 1], ids=["exact", "hnsw"])
def test_neighbours_are_the_cluster_mates(ann_threshold: int) -> None:
    vectors = _clustered(500, 16)
    tracks = [TrackId(f"t{i}") for i in range(500)]
    index = SimilarityIndex(dim=16, ann_threshold=ann_threshold)
    index.build(tracks, vectors)
    assert index.backend == ("exact" if ann_threshold > 1 else "hnsw")
    for i in (0, 137, 499):
        found = index.query(tracks[i], n=4)
        assert found is not None
        assert {f.track for f in found} == {tracks[j] for j in range(i // 5 * 5, i // 5 * 5 + 5) if j != i}
    index.remove([tracks[1]])
    found = index.query(tracks[0], n=4)
    assert found is not None and tracks[1] not in {f.track for f in found} and len(found) == 4
    assert index.query(tracks[1]) is None and len(index) == 499


def test_adding_grows_and_rebuilds_and_replaces() -> None:
    vectors = _clustered(100, 8, seed=1)
    tracks = [TrackId(f"t{i}") for i in range(100)]
    index = SimilarityIndex(dim=8)
    for i in range(100):
        index.add([tracks[i]], vectors[i : i + 1])
    assert len(index) == 100
    found = index.query(tracks[10], n=4)
    assert found is not None and {f.track for f in found} == {tracks[j] for j in (11, 12, 13, 14)}
    index.add([tracks[10]], vectors[50:51])  # re-analysed: replaced, not duplicated
    found = index.query(tracks[10], n=4)
    assert len(index) == 100 and found is not None
    assert {f.track for f in found} <= {tracks[j] for j in range(50, 55)} and found[0].track == tracks[50]


def test_wrong_dimension_is_refused() -> None:
    with pytest.raises(InvalidInput):
        SimilarityIndex(dim=8).build([TrackId("a")], np.zeros((1, 9), np.float32))
