"""A small real-data check on the shared Last.fm 2K files (research licence: tests and benchmarks only)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from consentune.bench.recommend import load_lastfm
from consentune.recommend import (
    EASE,
    IALS,
    ItemKNN,
    Popularity,
    Recommender,
    RP3Beta,
    TwoStage,
    Weighting,
    holdout_split,
    metrics,
    top_n,
)

LASTFM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lastfm-2k"


def _require_data() -> None:
    if not (LASTFM / "user_artists.dat").is_file():
        message = f"Last.fm 2K data is absent at {LASTFM} (it sits beside the repo in CI)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def split() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    _require_data()
    plays = load_lastfm(LASTFM).plays.matrix
    # a quick slice: the 400 most active users, artists with >= 3 listeners among them
    active = np.argsort(-np.diff(plays.indptr), kind="stable")[:400]
    sub = sp.csr_matrix(plays[np.sort(active)])
    sub = sp.csr_matrix(sub[:, np.diff(sp.csc_matrix(sub).indptr) >= 3])
    return holdout_split(sub, fraction=0.2, seed=42)


def _ndcg(model: Recommender, train: sp.csr_matrix, test: sp.csr_matrix) -> float:
    model.fit(train)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    rec = top_n(model.scores(train[users]), n=10, exclude=train[users])
    return metrics.ndcg_at_k(rec, test[users], k=10)


def test_ease_beats_popularity_on_real_plays(split: tuple[sp.csr_matrix, sp.csr_matrix]) -> None:
    train, test = split
    ease = _ndcg(EASE(l2=300.0, min_users=1, weighting=Weighting("log1p")), train, test)
    popularity = _ndcg(Popularity(), train, test)
    assert ease > 1.5 * popularity


def test_loader_keeps_every_artist_column() -> None:
    _require_data()
    data = load_lastfm(LASTFM)
    assert data.plays.matrix.shape == (1892, 17632)
    assert data.plays.matrix.nnz == 92834
    assert data.tag_items.max() < 17632


def test_two_stage_model_keeps_its_accuracy_while_giving_the_long_tail_its_share(
    split: tuple[sp.csr_matrix, sp.csr_matrix],
) -> None:
    train, test = split
    members: list[Recommender] = [
        IALS(factors=32, regularization=10.0, alpha=1.0, seed=1, weighting=Weighting("bm25")),
        RP3Beta(alpha=0.8, beta=0.3, weighting=Weighting("log1p")),
        ItemKNN(k=200, weighting=Weighting("log1p")),
    ]
    model = TwoStage(members, seed=7)
    plain = _ndcg(model, train, test)
    assert model.learned
    assert plain >= 0.97 * max(_ndcg(m, train, test) for m in members)
    users = np.flatnonzero(np.diff(test.indptr) > 0)

    def lists() -> np.ndarray:
        return top_n(model.scores(train[users]), n=10, exclude=train[users])

    untouched = metrics.long_tail_share_at_k(lists(), long_tail=model.long_tail, k=10)
    target = untouched + 0.10
    model.set_exposure(long_tail_target=target)
    shared = lists()
    assert abs(metrics.long_tail_share_at_k(shared, long_tail=model.long_tail, k=10) - target) <= 0.02
    assert metrics.ndcg_at_k(shared, test[users], k=10) >= 0.9 * plain
