"""The long-tail re-ranker: strength 0 keeps the model order, more strength means more tail, masks hold."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from consentune.errors import InvalidInput
from consentune.recommend import rerank_long_tail, top_n

RNG = np.random.default_rng(3)
SCORES = RNG.random((20, 50)).astype(np.float32)
TAIL = np.arange(50) >= 10


def _share(rec: np.ndarray) -> float:
    return float(TAIL[rec[rec >= 0]].mean())


def test_zero_strength_is_the_model_ranking() -> None:
    np.testing.assert_array_equal(rerank_long_tail(SCORES, long_tail=TAIL, strength=0.0), top_n(SCORES, n=10))


def test_tail_share_grows_with_strength_and_full_strength_fills_with_tail() -> None:
    shares = [_share(rerank_long_tail(SCORES, long_tail=TAIL, strength=s)) for s in (0.0, 0.2, 0.5, 1.01)]
    assert shares == sorted(shares)
    assert shares[-1] == 1.0


def test_tail_items_keep_their_model_order() -> None:
    rec = rerank_long_tail(SCORES, long_tail=TAIL, strength=2.0, n=5)
    for user, items in enumerate(rec):
        assert list(SCORES[user, items]) == sorted(SCORES[user, items], reverse=True)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=50, max_size=50), st.floats(0.0, 2.0))
def test_never_returns_disallowed_or_seen_items(mask: list[bool], strength: float) -> None:
    allowed = np.array(mask)
    seen = sp.csr_matrix((np.ones(20), (np.arange(20), np.arange(20))), shape=(20, 50))
    rec = rerank_long_tail(SCORES, long_tail=TAIL, strength=strength, allowed=allowed, exclude=seen)
    for user, items in enumerate(rec):
        got = items[items >= 0]
        assert allowed[got].all()
        assert user not in got
        assert len(got) == min(10, int(allowed.sum()) - int(allowed[user]))


def test_negative_strength_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="strength"):
        rerank_long_tail(SCORES, long_tail=TAIL, strength=-0.1)
