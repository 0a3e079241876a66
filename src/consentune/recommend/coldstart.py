"""Cold start: recommend items nobody has played yet (new uploads) from their tags.

Items are described by a bag of tags (items × tags counts).  Two content
models map a user into tag space through the items they played:
:class:`TagLinear` learns each user's tag weights by ridge regression (the
stronger one), :class:`TagProfile` takes the cosine between a summed tag
profile and the item's TF-IDF vector.  A new track needs nothing but its
tag list (:meth:`TagVocabulary.rows`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from consentune.errors import InvalidInput
from consentune.recommend.interactions import Weighting
from consentune.recommend.models import FloatArray


class TagVocabulary:
    """A fixed, sorted set of tags; turns tag assignments into items × tags count matrices."""

    def __init__(self, tags: Iterable[Any]) -> None:
        self.tags = np.unique(np.asarray(list(tags)))
        if self.tags.size == 0:
            raise InvalidInput("a tag vocabulary needs at least one tag", hint="pass the tags seen in the catalogue")

    def __len__(self) -> int:
        return int(self.tags.size)

    def counts(self, items: ArrayLike, tags: ArrayLike, *, n_items: int) -> Any:
        """Items × tags CSR of assignment counts from parallel (item column, tag) arrays; unknown tags are dropped."""
        item_cols = np.asarray(items, dtype=np.int64)
        tag_vals = np.asarray(tags)
        cols = np.clip(np.searchsorted(self.tags, tag_vals), 0, len(self) - 1)
        known = self.tags[cols] == tag_vals
        m = sp.csr_matrix(
            (np.ones(int(known.sum()), dtype=np.float32), (item_cols[known], cols[known])),
            shape=(n_items, len(self)),
        )
        m.sum_duplicates()
        return m

    def rows(self, tag_lists: Sequence[Sequence[Any]]) -> Any:
        """Count rows (len(tag_lists) × tags) for new items given only their tag lists."""
        items = np.repeat(np.arange(len(tag_lists)), [len(t) for t in tag_lists])
        flat = [t for tags in tag_lists for t in tags]
        return self.counts(items, np.asarray(flat, dtype=self.tags.dtype), n_items=len(tag_lists))


def _l2_rows(m: Any) -> Any:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ m, dtype=np.float32)


class TagProfile:
    """Content model: cosine between a user's tag profile and a new item's TF-IDF tag vector.

    The profile is the weighted sum of the TF-IDF tag vectors of the items in
    the user's row (``weighting`` of the play counts), so it needs no
    tagging activity from the user, only plays.
    """

    def __init__(self, *, weighting: Weighting | None = None, sublinear: bool = True) -> None:
        self.weighting = weighting or Weighting("log1p")
        self.sublinear = sublinear
        self._idf: NDArray[np.float32] | None = None
        self._known: Any = None

    def fit(self, train: Any, item_tags: Any) -> None:
        """Learn tag idf and the known items' tag vectors.

        ``train`` is users × items (raw counts); ``item_tags`` is items × tags
        counts for the same item columns.
        """
        tags = sp.csr_matrix(item_tags, dtype=np.float32)
        if tags.shape[0] != train.shape[1]:
            raise InvalidInput(
                f"item_tags has {tags.shape[0]} rows, train has {train.shape[1]} items", hint="one row per item column"
            )
        df = np.bincount(tags.indices, minlength=tags.shape[1]).astype(np.float64)
        tagged = max(1, int((np.diff(tags.indptr) > 0).sum()))
        self._idf = np.log((1.0 + tagged) / (1.0 + df)).astype(np.float32) + 1.0
        self.weighting.fit(train)
        self._known = self.item_vectors(tags)

    def item_vectors(self, item_tags: Any) -> Any:
        """L2-normalised TF-IDF rows for items × tags counts."""
        if self._idf is None:
            raise InvalidInput("TagProfile is not fitted", hint="call fit(train, item_tags) first")
        m = sp.csr_matrix(item_tags, dtype=np.float32, copy=True)
        if self.sublinear:
            m.data = np.log1p(m.data)
        return _l2_rows(sp.csr_matrix(m @ sp.diags(self._idf)))

    def user_vectors(self, user_rows: Any) -> Any:
        """L2-normalised tag profiles (users × tags) from raw-count rows over the known items."""
        return _l2_rows(sp.csr_matrix(self.weighting(user_rows) @ self._known))

    def scores(self, user_rows: Any, new_item_tags: Any) -> FloatArray:
        """Scores users × new items; ``new_item_tags`` is new items × tags counts."""
        profiles = self.user_vectors(user_rows)
        return np.asarray((profiles @ self.item_vectors(new_item_tags).T).toarray(), dtype=np.float32)


class TagLinear:
    """Content model: each listener's taste over tags, learned by ridge regression on what they played.

    Items are TF-IDF tag vectors (tags on at least ``min_tag_items`` known
    items, at most ``max_tags`` of the most used) plus a popularity proxy,
    ``log(1 + tag assignments)``, available for a new item too.  A user's
    weights ``p = (XᵀX + l2·I)⁻¹ Xᵀ r`` regress their play row ``r`` over the
    known items ``X``, so a new item scores ``p·x``: unlike a tag-profile
    cosine it learns which tags *separate* what a user plays from what they
    skip, and how much popularity matters.  Fold-in is one product per user.
    """

    def __init__(
        self,
        *,
        l2: float = 100.0,
        weighting: Weighting | None = None,
        popularity: float = 1.0,
        min_tag_items: int = 2,
        max_tags: int = 5_000,
    ) -> None:
        self.l2 = l2
        self.weighting = weighting or Weighting("log1p")
        self.popularity = popularity
        self.min_tag_items = min_tag_items
        self.max_tags = max_tags
        self._keep: NDArray[np.int64] | None = None
        self._idf: NDArray[np.float64] = np.zeros(0)
        self._warm: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._known_features: Any = None
        self._inverse: Any = None

    def fit(self, train: Any, item_tags: Any) -> None:
        """``train`` users × items raw counts; ``item_tags`` items × tags counts for the same columns."""
        tags = sp.csr_matrix(item_tags, dtype=np.float64)
        if tags.shape[0] != train.shape[1]:
            raise InvalidInput(
                f"item_tags has {tags.shape[0]} rows, train has {train.shape[1]} items", hint="one row per item column"
            )
        self._warm = np.flatnonzero(np.diff(sp.csc_matrix(train).indptr) > 0)
        if self._warm.size == 0:
            raise InvalidInput("no item has plays to learn tag tastes from", hint="train after listeners have played")
        df = np.bincount(sp.csr_matrix(tags[self._warm]).indices, minlength=tags.shape[1])
        usable = np.flatnonzero(df >= self.min_tag_items)
        self._keep = np.sort(usable[np.argsort(-df[usable], kind="stable")[: self.max_tags]])
        self._idf = np.log((1.0 + self._warm.size) / (1.0 + df[self._keep])) + 1.0
        known = self.item_vectors(tags[self._warm])
        gram = np.asarray((known.T @ known).toarray())
        gram[np.diag_indices_from(gram)] += self.l2
        # users' weights are (row @ known) @ inverse: kept apart, the dense part is features², not items × features
        self._known_features = known
        self._inverse = np.asarray(np.linalg.inv(gram), dtype=np.float32)
        self.weighting.fit(train)

    def item_vectors(self, item_tags: Any) -> Any:
        """Feature rows (items × (kept tags + 2)) for items × tags counts."""
        if self._keep is None:
            raise InvalidInput("TagLinear is not fitted", hint="call fit(train, item_tags) first")
        counts = sp.csr_matrix(item_tags, dtype=np.float64)
        m = sp.csr_matrix(counts[:, self._keep], copy=True)
        m.data = np.log1p(m.data)
        m = _l2_rows(sp.csr_matrix(m @ sp.diags(self._idf)))
        assignments = np.log1p(np.asarray(counts.sum(axis=1)).ravel())
        extra = sp.csr_matrix(np.column_stack([assignments, np.ones_like(assignments)]) * self.popularity)
        return sp.csr_matrix(sp.hstack([m, extra]), dtype=np.float32)

    def scores(self, user_rows: Any, new_item_tags: Any) -> FloatArray:
        """Scores users × new items from the users' raw-count rows over the training columns."""
        rows = sp.csr_matrix(self.weighting(user_rows))[:, self._warm]
        weights = np.asarray(sp.csr_matrix(rows @ self._known_features).toarray() @ self._inverse)
        return np.asarray(self.item_vectors(new_item_tags) @ weights.T, dtype=np.float32).T


class TagPopularity:
    """Baseline: among new items carrying the user's strongest profile tag, the most-tagged first.

    "Popularity" of an item with no plays is its number of tag assignments;
    items without the user's top tag rank below all items with it.
    """

    def __init__(self) -> None:
        self._profile = TagProfile(weighting=Weighting("log1p"), sublinear=False)

    def fit(self, train: Any, item_tags: Any) -> None:
        self._profile.fit(train, item_tags)

    def scores(self, user_rows: Any, new_item_tags: Any) -> FloatArray:
        top_tag = np.asarray(self._profile.user_vectors(user_rows).argmax(axis=1)).ravel()
        tags = sp.csc_matrix(new_item_tags, dtype=np.float32)
        popularity = np.asarray(tags.sum(axis=1), dtype=np.float32).ravel()
        relative = popularity / max(1.0, float(popularity.max()))
        has_top = np.asarray(tags[:, top_tag].T.toarray() > 0, dtype=np.float32)
        return np.asarray(has_top + relative[np.newaxis, :] * 0.5, dtype=np.float32)


__all__ = ["TagLinear", "TagPopularity", "TagProfile", "TagVocabulary"]
