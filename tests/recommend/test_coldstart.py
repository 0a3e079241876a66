"""Cold start from tags: a new item with only a tag list reaches the users whose plays match its tags."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from consentune.errors import InvalidInput
from consentune.recommend import TagLinear, TagPopularity, TagProfile, TagVocabulary

# items 0-2 are "metal", items 3-5 are "jazz"; user 0 plays metal, user 1 plays jazz
VOCAB = TagVocabulary(["metal", "doom", "jazz", "bebop", "live"])
ITEM_TAGS = VOCAB.counts(
    [0, 0, 1, 2, 2, 3, 4, 4, 5, 0, 3],
    ["metal", "doom", "metal", "metal", "doom", "jazz", "jazz", "bebop", "jazz", "live", "live"],
    n_items=6,
)
PLAYS = sp.csr_matrix(np.array([[5, 3, 9, 0, 0, 0], [0, 0, 0, 4, 8, 1]], dtype=np.float32))


def test_new_items_from_tag_lists_only_go_to_matching_users() -> None:
    model = TagProfile()
    model.fit(PLAYS, ITEM_TAGS)
    new = VOCAB.rows([["jazz", "bebop"], ["doom", "metal"], ["unheard-of-tag"]])
    scores = model.scores(PLAYS, new)
    assert scores.shape == (2, 3)
    assert scores[0].argmax() == 1
    assert scores[1].argmax() == 0
    assert scores[:, 2].tolist() == [0.0, 0.0]


def test_vocabulary_drops_unknown_tags_and_counts_repeats() -> None:
    rows = VOCAB.rows([["jazz", "jazz", "nope"]])
    assert rows.toarray().tolist() == [[0.0, 0.0, 2.0, 0.0, 0.0]]


def test_tag_popularity_baseline_prefers_the_top_tag_then_the_most_tagged() -> None:
    baseline = TagPopularity()
    baseline.fit(PLAYS, ITEM_TAGS)
    new = VOCAB.rows([["metal"], ["metal", "live", "doom"], ["jazz", "jazz", "jazz", "jazz"]])
    order = np.argsort(-baseline.scores(PLAYS[:1], new)[0], kind="stable")
    assert order.tolist() == [1, 0, 2]


def test_unfitted_profile_and_mismatched_shapes_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="not fitted"):
        TagProfile().item_vectors(ITEM_TAGS)
    with pytest.raises(InvalidInput, match="rows"):
        TagProfile().fit(PLAYS, ITEM_TAGS[:4])


def test_tag_linear_learns_each_users_tag_taste() -> None:
    model = TagLinear(l2=0.1, min_tag_items=1)
    model.fit(PLAYS, ITEM_TAGS)
    new = VOCAB.rows([["jazz", "bebop"], ["doom", "metal"], ["unheard-of-tag"]])
    scores = model.scores(PLAYS, new)
    assert scores.shape == (2, 3)
    assert scores[0].argmax() == 1
    assert scores[1].argmax() == 0


def test_tag_linear_counts_more_tag_assignments_as_more_popular() -> None:
    model = TagLinear(l2=0.1, min_tag_items=1)
    model.fit(PLAYS, ITEM_TAGS)
    # same tags, but one was tagged by many more people: a proxy for reach that a new upload also has
    new = VOCAB.rows([["jazz"], ["jazz"] * 5])
    assert model.scores(PLAYS[1:], new)[0, 1] != model.scores(PLAYS[1:], new)[0, 0]


def test_tag_linear_needs_plays_and_matching_shapes() -> None:
    with pytest.raises(InvalidInput, match="not fitted"):
        TagLinear().item_vectors(ITEM_TAGS)
    with pytest.raises(InvalidInput, match="rows"):
        TagLinear().fit(PLAYS, ITEM_TAGS[:4])
    with pytest.raises(InvalidInput, match="no item has plays"):
        TagLinear().fit(sp.csr_matrix((2, 6), dtype=np.float32), ITEM_TAGS)
