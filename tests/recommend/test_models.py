"""One behaviour suite for every recommender, on a fixture with a known right answer.

Two blocks: users 0-19 play only items 0-9, users 20-39 only items 10-19
(each plays 6 of the 10, random counts).  A user from block A must be
recommended block-A items they have not played.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from consentune.errors import InvalidInput
from consentune.recommend import EASE, IALS, Blend, ItemKNN, Popularity, Recommender, RP3Beta, TwoStage, Weighting

N_USERS, N_ITEMS, BLOCK = 40, 20, 10


def _fixture() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    rows, cols, vals = [], [], []
    for user in range(N_USERS):
        block = 0 if user < N_USERS // 2 else BLOCK
        for item in rng.choice(BLOCK, size=6, replace=False):
            rows.append(user)
            cols.append(block + item)
            vals.append(float(rng.integers(1, 500)))
    return sp.csr_matrix((vals, (rows, cols)), shape=(N_USERS, N_ITEMS), dtype=np.float32)


X = _fixture()

PERSONALISED: dict[str, Callable[[], Recommender]] = {
    "item-knn": lambda: ItemKNN(k=10),
    "rp3beta": lambda: RP3Beta(alpha=1.0, beta=0.3, k=10, weighting=Weighting("log1p")),
    "ease": lambda: EASE(l2=50.0, min_users=1, weighting=Weighting("log1p")),
    "ials": lambda: IALS(factors=4, regularization=0.1, alpha=5.0, iterations=10, threads=1, seed=1),
    "ials-bm25": lambda: IALS(
        factors=4, regularization=0.1, alpha=5.0, iterations=10, seed=1, weighting=Weighting("bm25")
    ),
    "blend": lambda: Blend([(EASE(l2=5.0, min_users=1), 1.0), (ItemKNN(k=10), 0.5)]),
    "two-stage": lambda: TwoStage(
        [EASE(l2=50.0, min_users=1, weighting=Weighting("log1p")), ItemKNN(k=10)], candidates=10, seed=1
    ),
}
ALL = {"popularity": Popularity, **PERSONALISED}


def _fitted(name: str, matrix: sp.csr_matrix = X) -> Recommender:
    model = ALL[name]()
    model.fit(matrix)
    return model


@pytest.fixture(scope="module", params=sorted(ALL))
def model(request: pytest.FixtureRequest) -> Recommender:
    return _fitted(request.param)


@pytest.mark.parametrize("name", sorted(PERSONALISED))
@pytest.mark.parametrize("user", [0, 7, 25, 39])
def test_recommends_within_the_users_block(name: str, user: int) -> None:
    items, scores = _fitted(name).recommend(X[user], n=2)
    block = range(0, BLOCK) if user < N_USERS // 2 else range(BLOCK, N_ITEMS)
    assert len(items) == 2
    assert all(int(i) in block for i in items)
    assert list(scores) == sorted(scores, reverse=True)


def test_seen_and_excluded_items_never_come_back(model: Recommender) -> None:
    for user in range(N_USERS):
        seen = X[user].indices
        items, _ = model.recommend(X[user], n=N_ITEMS, exclude=np.array([19, 0]))
        assert not set(items.tolist()) & (set(seen.tolist()) | {0, 19})
        assert len(items) == N_ITEMS - len(set(seen.tolist()) | {0, 19})


@settings(max_examples=30, deadline=None)
@given(user=st.integers(0, N_USERS - 1), mask=st.lists(st.booleans(), min_size=N_ITEMS, max_size=N_ITEMS))
def test_allowed_mask_is_always_respected(model: Recommender, user: int, mask: list[bool]) -> None:
    allowed = np.array(mask)
    items, _ = model.recommend(X[user], n=N_ITEMS, allowed=allowed)
    assert allowed[items].all()
    assert len(items) == int((allowed & ~np.isin(np.arange(N_ITEMS), X[user].indices)).sum())


@pytest.mark.parametrize("name", sorted(PERSONALISED))
def test_fold_in_serves_a_user_the_model_never_saw(name: str) -> None:
    user = 3
    others = sp.csr_matrix(X[np.arange(N_USERS) != user])
    model = _fitted(name, others)
    items, _ = model.recommend(X[user], n=2)
    assert all(int(i) < BLOCK for i in items)


@pytest.mark.parametrize("name", ["item-knn", "rp3beta", "ease", "blend", "two-stage"])
def test_fold_in_equals_training_in_for_neighbourhood_models(name: str) -> None:
    with_user = _fitted(name)
    np.testing.assert_allclose(with_user.scores(X[:5]), with_user.scores(X)[:5], rtol=1e-6)


def test_ials_fold_in_approximates_the_trained_user_factors() -> None:
    model = IALS(factors=4, regularization=0.1, alpha=5.0, iterations=15, threads=1, seed=1)
    model.fit(X)
    folded = model.user_factors(model.weighting(X) if model.weighting else X)
    trained = model.model.user_factors
    cosine = (folded * trained).sum(axis=1) / (np.linalg.norm(folded, axis=1) * np.linalg.norm(trained, axis=1))
    assert cosine.min() > 0.98


def test_serving_fold_in_solves_the_same_system_as_the_library() -> None:
    model = IALS(factors=8, regularization=0.5, alpha=3.0, iterations=5, threads=1, seed=2)
    model.fit(X)
    rows = sp.csr_matrix(model.weighting(X) if model.weighting else X, dtype=np.float32)
    few = rows[:3]  # the numpy path serves small batches, the library solves large ones
    np.testing.assert_allclose(model.user_factors(few), model.user_factors(rows)[:3], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(ALL))
def test_fitting_twice_gives_identical_scores(name: str) -> None:
    np.testing.assert_array_equal(_fitted(name).scores(X), _fitted(name).scores(X))


def test_wrong_width_rows_are_rejected(model: Recommender) -> None:
    with pytest.raises(InvalidInput, match="item columns"):
        model.scores(sp.csr_matrix((1, N_ITEMS + 1), dtype=np.float32))


def test_unfitted_model_says_so() -> None:
    with pytest.raises(InvalidInput, match="not fitted"):
        EASE().scores(X[:1])
