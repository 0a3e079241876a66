"""Accuracy and exposure metrics for top-k lists.

``recommended`` is always an int array of shape (users, k) of item
columns, best first, padded with -1 when a list is shorter than k.
``relevant`` is a CSR matrix (users × items) whose non-zeros are the
held-out items; relevance is binary.  Accuracy metrics average over
users with at least one relevant item.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from consentune.errors import InvalidInput


def _hits(recommended: NDArray[np.int64], relevant: Any) -> NDArray[np.bool_]:
    rel = sp.csr_matrix(relevant)
    if rel.shape[0] != recommended.shape[0]:
        raise InvalidInput(
            f"{recommended.shape[0]} lists but {rel.shape[0]} relevance rows", hint="pass one row per user"
        )
    hits = np.zeros(recommended.shape, dtype=bool)
    for user in range(rel.shape[0]):
        truth = rel.indices[rel.indptr[user] : rel.indptr[user + 1]]
        hits[user] = np.isin(recommended[user], truth) & (recommended[user] >= 0)
    return hits


def _counts(relevant: Any) -> NDArray[np.int64]:
    return np.asarray(np.diff(sp.csr_matrix(relevant).indptr), dtype=np.int64)


def recall_at_k(recommended: NDArray[np.int64], relevant: Any, *, k: int = 10) -> float:
    """Mean over users of (relevant items in the top k) / (relevant items)."""
    top = recommended[:, :k]
    counts = _counts(relevant)
    users = counts > 0
    if not users.any():
        return 0.0
    return float((_hits(top, relevant).sum(axis=1)[users] / counts[users]).mean())


def ndcg_at_k(recommended: NDArray[np.int64], relevant: Any, *, k: int = 10) -> float:
    """Mean binary NDCG@k: DCG with gain 1 at rank r (0-based) discounted by log2(r + 2), over the ideal DCG."""
    top = recommended[:, :k]
    discounts = 1.0 / np.log2(np.arange(k) + 2.0)
    counts = _counts(relevant)
    users = counts > 0
    if not users.any():
        return 0.0
    dcg = (_hits(top, relevant) * discounts[: top.shape[1]]).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(counts, k) - 1]
    return float((dcg[users] / ideal[users]).mean())


def coverage_at_k(recommended: NDArray[np.int64], *, n_items: int, k: int = 10) -> float:
    """Share of the catalogue (``n_items``) that appears in at least one top-k list."""
    top = recommended[:, :k]
    return float(np.unique(top[top >= 0]).size / n_items)


def long_tail_share_at_k(recommended: NDArray[np.int64], *, long_tail: NDArray[np.bool_], k: int = 10) -> float:
    """Share of filled top-k slots that hold a long-tail item."""
    top = recommended[:, :k]
    filled = top[top >= 0]
    return float(long_tail[filled].mean()) if filled.size else 0.0


def long_tail_recall_at_k(
    recommended: NDArray[np.int64], relevant: Any, *, long_tail: NDArray[np.bool_], k: int = 10
) -> float:
    """Recall@k restricted to relevant long-tail items (users with at least one)."""
    rel = sp.csr_matrix(relevant)
    rel_tail = sp.csr_matrix(rel.multiply(long_tail[np.newaxis, :].astype(np.float32)))
    rel_tail.eliminate_zeros()
    return recall_at_k(recommended, rel_tail, k=k)


def exposure_gini(recommended: NDArray[np.int64], *, n_items: int, k: int = 10) -> float:
    """Gini coefficient of how often each catalogue item appears in the top-k lists (0 = equal, 1 = one item)."""
    top = recommended[:, :k]
    counts = np.sort(np.bincount(top[top >= 0], minlength=n_items)).astype(np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    ranks = np.arange(1, n_items + 1)
    return float(((2 * ranks - n_items - 1) * counts).sum() / (n_items * total))


def long_tail_mask(train: Any, *, head_share: float = 0.2) -> NDArray[np.bool_]:
    """Items outside the top ``head_share`` of items by training listeners (ties broken by column order)."""
    listeners = np.diff(sp.csc_matrix(train).indptr)
    order = np.argsort(-listeners, kind="stable")
    tail = np.ones(listeners.size, dtype=bool)
    tail[order[: round(head_share * listeners.size)]] = False
    return tail


__all__ = [
    "coverage_at_k",
    "exposure_gini",
    "long_tail_mask",
    "long_tail_recall_at_k",
    "long_tail_share_at_k",
    "ndcg_at_k",
    "recall_at_k",
]
