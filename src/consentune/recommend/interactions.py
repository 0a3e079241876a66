"""User × item interaction matrices, the per-user holdout split and weighting schemes.

Rows are users, columns are items; values are play counts (or any
non-negative strength).  Index maps are stable: ids are sorted, so the
same triples always give the same matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from consentune.errors import InvalidInput

Scheme = Literal["binary", "log1p", "bm25"]
SCHEMES: tuple[Scheme, ...] = ("binary", "log1p", "bm25")


@dataclass(frozen=True)
class Interactions:
    """A CSR matrix (users × items, float32) with the external ids of its rows and columns."""

    matrix: Any
    user_ids: NDArray[Any]
    item_ids: NDArray[Any]

    def item_index(self, ids: ArrayLike) -> NDArray[np.int64]:
        """Column numbers of the given item ids; raises InvalidInput for an unknown id."""
        wanted = np.asarray(ids)
        pos = np.searchsorted(self.item_ids, wanted)
        pos = np.clip(pos, 0, len(self.item_ids) - 1)
        unknown = self.item_ids[pos] != wanted
        if np.any(unknown):
            raise InvalidInput(
                f"unknown item id {wanted[unknown][0]!r}", hint="build the matrix with item_ids covering it"
            )
        return pos.astype(np.int64)


def build_interactions(
    users: ArrayLike,
    items: ArrayLike,
    weights: ArrayLike,
    *,
    item_ids: ArrayLike | None = None,
) -> Interactions:
    """Build a users × items CSR matrix from (user, item, weight) triples.

    Duplicate pairs are summed.  ``item_ids`` fixes the column set (e.g. the
    whole catalogue, so items without plays still get a column).
    """
    u = np.asarray(users)
    i = np.asarray(items)
    w = np.asarray(weights, dtype=np.float64)
    if not (len(u) == len(i) == len(w)):
        raise InvalidInput(
            f"triples have different lengths: {len(u)}, {len(i)}, {len(w)}", hint="pass equal-length arrays"
        )
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise InvalidInput("weights must be finite and non-negative", hint="pass play counts or strengths >= 0")
    user_ids, rows = np.unique(u, return_inverse=True)
    cols_ids = np.unique(i) if item_ids is None else np.unique(np.asarray(item_ids))
    result = Interactions(sp.csr_matrix((0, 0)), user_ids, cols_ids)
    cols = result.item_index(i)
    matrix = sp.csr_matrix((w, (rows, cols)), shape=(len(user_ids), len(cols_ids)), dtype=np.float64)
    matrix.sum_duplicates()
    matrix.sort_indices()
    return Interactions(matrix.astype(np.float32), user_ids, cols_ids)


def holdout_split(matrix: Any, *, fraction: float = 0.2, seed: int) -> tuple[Any, Any]:
    """Split every user's items at random into train and test (seeded, per user).

    Each user with ``n`` items gives ``max(1, round(fraction * n))`` of them to
    test; users with one item keep it in train.  Returns two CSR matrices of
    the input's shape whose sum is the input.
    """
    if not 0.0 < fraction < 1.0:
        raise InvalidInput(f"fraction must be in (0, 1), got {fraction}", hint="use e.g. 0.2")
    m = sp.csr_matrix(matrix)
    rng = np.random.default_rng(seed)
    in_test = np.zeros(m.nnz, dtype=bool)
    for user in range(m.shape[0]):
        start, end = m.indptr[user], m.indptr[user + 1]
        count = end - start
        if count < 2:
            continue
        n_test = max(1, round(fraction * count))
        in_test[start + rng.permutation(count)[:n_test]] = True
    return _keep(m, ~in_test), _keep(m, in_test)


def _keep(m: Any, mask: NDArray[np.bool_]) -> Any:
    data = np.where(mask, m.data, 0).astype(m.dtype)
    out = sp.csr_matrix((data, m.indices.copy(), m.indptr.copy()), shape=m.shape)
    out.eliminate_zeros()
    return out


class Weighting:
    """Turns raw counts into confidences; fitted on training rows, applied to any rows.

    Schemes
    -------
    binary
        1 for every interaction.
    log1p
        ``log(1 + count)``.
    bm25
        Okapi BM25 with users as documents and items as terms: saturating
        ``log1p(count)`` term frequency (``k1``), normalised by the user's
        profile length (``b``), times the item's inverse document frequency
        from the training rows.
    """

    def __init__(self, scheme: Scheme = "binary", *, k1: float = 1.2, b: float = 0.75) -> None:
        if scheme not in SCHEMES:
            raise InvalidInput(f"unknown weighting scheme {scheme!r}", hint=f"use one of {', '.join(SCHEMES)}")
        self.scheme = scheme
        self.k1 = k1
        self.b = b
        self._idf: NDArray[np.float32] | None = None
        self._avg_len = 1.0

    def __repr__(self) -> str:
        return (
            f"Weighting({self.scheme!r})" if self.scheme != "bm25" else f"Weighting('bm25', k1={self.k1}, b={self.b})"
        )

    def fit(self, matrix: Any) -> Weighting:
        """Learn item idf and the mean profile length from training rows (users × items)."""
        m = sp.csr_matrix(matrix)
        n_users = max(1, m.shape[0])
        df = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float64)
        self._idf = np.log((n_users - df + 0.5) / (df + 0.5) + 1.0).astype(np.float32)
        self._avg_len = float(np.diff(m.indptr).mean()) if m.shape[0] else 1.0
        return self

    def __call__(self, rows: Any) -> Any:
        """Weighted copy of ``rows`` (CSR, float32, same sparsity)."""
        m = sp.csr_matrix(rows, dtype=np.float32, copy=True)
        if self.scheme == "binary":
            m.data[:] = 1.0
        elif self.scheme == "log1p":
            m.data = np.log1p(m.data)
        else:
            if self._idf is None:
                raise InvalidInput("bm25 weighting used before fit", hint="call Weighting.fit(train) first")
            tf = np.log1p(m.data)
            lengths = np.repeat(np.diff(m.indptr), np.diff(m.indptr)).astype(np.float32)
            norm = self.k1 * (1.0 - self.b + self.b * lengths / self._avg_len)
            m.data = (tf * (self.k1 + 1.0) / (tf + norm) * self._idf[m.indices]).astype(np.float32)
        return m


__all__ = ["SCHEMES", "Interactions", "Scheme", "Weighting", "build_interactions", "holdout_split"]
