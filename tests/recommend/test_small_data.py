"""The served model on a new platform's tiny catalogue: it trains on any non-empty play matrix, never crashes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentune.errors import InvalidInput
from consentune.recommend.service import serving_model


@st.composite
def tiny_plays(draw: st.DrawFn) -> np.ndarray:
    users = draw(st.integers(1, 4))
    items = draw(st.integers(1, 4))
    cells = draw(st.lists(st.integers(0, 3), min_size=users * items, max_size=users * items))
    return np.array(cells, dtype=np.float32).reshape(users, items)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plays=tiny_plays())
def test_any_tiny_matrix_trains_and_recommends_only_unheard_items(plays: np.ndarray) -> None:
    model = serving_model()
    model.fit(sp.csr_matrix(plays))
    for user in range(plays.shape[0]):
        items, scores = model.recommend(sp.csr_matrix(plays[user : user + 1]), n=3)
        assert len(items) == len(scores) <= 3
        assert all(plays[user, item] == 0 for item in items.tolist())
        assert np.isfinite(scores).all()


def test_one_listener_one_track_one_play() -> None:
    """Every item already heard: no candidate at all for the stage to learn from (the old crash)."""
    model = serving_model()
    model.fit(sp.csr_matrix(np.ones((1, 1), dtype=np.float32)))
    items, _scores = model.recommend(sp.csr_matrix(np.ones((1, 1), dtype=np.float32)), n=10)
    assert items.tolist() == []


@pytest.mark.parametrize("shape", [(0, 0), (0, 3), (3, 0)])
def test_an_empty_matrix_is_refused_with_a_hint(shape: tuple[int, int]) -> None:
    with pytest.raises(InvalidInput, match=rf"{shape[0]} users × {shape[1]} items") as caught:
        serving_model().fit(sp.csr_matrix(shape, dtype=np.float32))
    assert caught.value.hint
