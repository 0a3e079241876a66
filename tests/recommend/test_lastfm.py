"""A small real-data check on the shared Last.fm 2K files (research licence: tests and benchmarks only)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from consentune.bench.recommend import load_lastfm
from consentune.recommend import EASE, Popularity, Recommender, Weighting, holdout_split, metrics, top_n

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
