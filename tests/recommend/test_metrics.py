"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from consentune.recommend import metrics

# two users, four items; user 0 holds out items 0 and 2, user 1 holds out item 3, user 2 nothing
RELEVANT = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=np.float32))
RECOMMENDED = np.array([[2, 1], [0, 1], [3, -1]], dtype=np.int64)


def test_recall_counts_hits_over_relevant_and_skips_users_without_any() -> None:
    assert metrics.recall_at_k(RECOMMENDED, RELEVANT, k=2) == pytest.approx((1 / 2 + 0) / 2)


def test_ndcg_is_binary_dcg_over_ideal() -> None:
    ideal_user0 = 1 + 1 / math.log2(3)
    assert metrics.ndcg_at_k(RECOMMENDED, RELEVANT, k=2) == pytest.approx((1 / ideal_user0 + 0) / 2)


def test_ndcg_hit_at_second_rank() -> None:
    rel = sp.csr_matrix(np.array([[0, 1, 0]], dtype=np.float32))
    assert metrics.ndcg_at_k(np.array([[0, 1]]), rel, k=2) == pytest.approx(1 / math.log2(3))


def test_coverage_share_and_gini() -> None:
    assert metrics.coverage_at_k(RECOMMENDED, n_items=4, k=2) == pytest.approx(4 / 4)
    tail = np.array([False, False, True, True])
    assert metrics.long_tail_share_at_k(RECOMMENDED, long_tail=tail, k=2) == pytest.approx(2 / 5)
    # exposures sorted: 1, 1, 1, 2 (item 1 twice) -> sum (2i - n - 1) x_i / (n * total)
    expected = ((-3) * 1 + (-1) * 1 + 1 * 1 + 3 * 2) / (4 * 5)
    assert metrics.exposure_gini(RECOMMENDED, n_items=4, k=2) == pytest.approx(expected)


def test_gini_extremes() -> None:
    assert metrics.exposure_gini(np.array([[0, 1], [2, 3]]), n_items=4, k=2) == pytest.approx(0.0)
    assert metrics.exposure_gini(np.array([[0], [0]]), n_items=4, k=1) == pytest.approx(3 / 4)


def test_long_tail_recall_only_counts_tail_items() -> None:
    tail = np.array([False, False, True, True])
    # user 0's tail item 2 is hit; user 1's tail item 3 is missed
    assert metrics.long_tail_recall_at_k(RECOMMENDED, RELEVANT, long_tail=tail, k=2) == pytest.approx(0.5)


def test_long_tail_mask_is_bottom_80_percent_by_listeners() -> None:
    train = sp.csr_matrix(np.array([[1, 1, 0, 0, 0], [1, 0, 0, 0, 1], [1, 0, 0, 0, 0]], dtype=np.float32))
    assert metrics.long_tail_mask(train).tolist() == [False, True, True, True, True]
