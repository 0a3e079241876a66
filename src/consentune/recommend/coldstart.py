"""Cold start: recommend items nobody has played yet (new uploads) from their tags.

Items are described by a bag of tags (items × tags counts).  A user is
mapped into tag space through the items they played; a new item is scored
by the cosine between that profile and the item's TF-IDF tag vector.  A
new track needs nothing but its tag list (:meth:`TagVocabulary.rows`).
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


__all__ = ["TagPopularity", "TagProfile", "TagVocabulary"]
