"""Recommenders behind one base class: fit on a users × items matrix, score any user rows.

``scores`` is fold-in: a user is scored from an interaction row alone, so
fresh plays are served without retraining.  Every model applies its own
``Weighting`` to the raw counts it is given, at fit and at scoring time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from numpy.typing import NDArray

from consentune.errors import InvalidInput
from consentune.recommend.interactions import Weighting

FloatArray = NDArray[np.float32]
IntArray = NDArray[np.int64]


def top_n(
    scores: FloatArray,
    *,
    n: int,
    exclude: Any | None = None,
    allowed: NDArray[np.bool_] | None = None,
) -> IntArray:
    """Best ``n`` item columns per row of ``scores`` (users × items), best first.

    ``exclude`` (CSR, users × items) removes each user's non-zero items;
    ``allowed`` (bool, items) removes every item where it is False.  Rows with
    fewer than ``n`` eligible items are padded with -1.  Ties go to the lower
    column, so results are deterministic.
    """
    s = np.array(scores, dtype=np.float32, copy=True)
    if s.ndim != 2:
        raise InvalidInput(f"scores must be 2-D (users × items), got shape {s.shape}", hint="pass one row per user")
    if exclude is not None:
        ex = sp.csr_matrix(exclude)
        rows = np.repeat(np.arange(ex.shape[0]), np.diff(ex.indptr))
        s[rows, ex.indices] = -np.inf
    if allowed is not None:
        s[:, ~np.asarray(allowed, dtype=bool)] = -np.inf
    n = min(n, s.shape[1])
    if n <= 0:
        return np.zeros((s.shape[0], 0), dtype=np.int64)
    part = np.argpartition(-s, n - 1, axis=1)[:, :n] if n < s.shape[1] else np.tile(np.arange(s.shape[1]), (len(s), 1))
    part_scores = np.take_along_axis(s, part, axis=1)
    order = np.lexsort((part, -part_scores), axis=1)
    best = np.take_along_axis(part, order, axis=1).astype(np.int64)
    best[np.take_along_axis(part_scores, order, axis=1) == -np.inf] = -1
    return best


class Recommender(ABC):
    """Base class: ``fit`` on training counts, ``scores`` any user rows (fold-in), ``recommend`` one user."""

    def __init__(self, *, weighting: Weighting | None = None) -> None:
        self.weighting: Weighting | None = weighting or Weighting("binary")
        self.n_items = 0

    def fit(self, matrix: Any) -> None:
        """Train on a users × items CSR matrix of raw counts (at least one user and one item)."""
        x = sp.csr_matrix(matrix, dtype=np.float32)
        if 0 in x.shape:
            raise InvalidInput(
                f"cannot train on {x.shape[0]} users × {x.shape[1]} items",
                hint="train once there is at least one listener and one track",
            )
        self.n_items = x.shape[1]
        if self.weighting is not None:
            self.weighting.fit(x)
        self._fit(self._weigh(x))

    def _weigh(self, rows: Any) -> Any:
        return rows if self.weighting is None else self.weighting(rows)

    def scores(self, user_rows: Any) -> FloatArray:
        """Scores (users × items, float32) for users given only their raw-count rows."""
        rows = sp.csr_matrix(user_rows, dtype=np.float32)
        if self.n_items == 0:
            raise InvalidInput(f"{type(self).__name__} is not fitted", hint="call fit(train) first")
        if rows.shape[1] != self.n_items:
            raise InvalidInput(
                f"user rows have {rows.shape[1]} item columns, the model has {self.n_items}",
                hint="use the item index the model was fitted with",
            )
        return np.asarray(self._scores(self._weigh(rows)), dtype=np.float32)

    def recommend(
        self,
        user_row: Any,
        *,
        n: int = 10,
        exclude: IntArray | None = None,
        allowed: NDArray[np.bool_] | None = None,
    ) -> tuple[IntArray, FloatArray]:
        """Top ``n`` items for one user row (1 × items); the user's own items are never returned.

        ``exclude`` lists more item columns to skip; ``allowed`` (bool, items)
        masks items that may be recommended, e.g. those whose ``recommend``
        consent is granted.  Returns (items, scores), best first; fewer than
        ``n`` when too few items are eligible.
        """
        row = sp.csr_matrix(user_row, dtype=np.float32)
        if row.shape[0] != 1:
            raise InvalidInput(f"recommend takes one user row, got {row.shape[0]}", hint="use scores() for batches")
        s = self.scores(row)
        if exclude is not None and len(exclude):
            s[0, np.asarray(exclude, dtype=np.int64)] = -np.inf
        items = top_n(s, n=n, exclude=row, allowed=allowed)[0]
        items = items[items >= 0]
        return items, s[0, items]

    @abstractmethod
    def _fit(self, weighted: Any) -> None: ...

    @abstractmethod
    def _scores(self, weighted_rows: Any) -> FloatArray: ...


class Popularity(Recommender):
    """Everyone gets the items with the most (weighted) interactions."""

    def _fit(self, weighted: Any) -> None:
        self.popularity = np.asarray(weighted.sum(axis=0), dtype=np.float32).ravel()

    def _scores(self, weighted_rows: Any) -> FloatArray:
        return np.tile(self.popularity, (weighted_rows.shape[0], 1))


def _prune_rows(similarity: Any, k: int) -> Any:
    """Keep the ``k`` largest entries of every row of a sparse matrix."""
    s = sp.csr_matrix(similarity)
    keep = np.zeros(s.nnz, dtype=bool)
    for row in range(s.shape[0]):
        start, end = s.indptr[row], s.indptr[row + 1]
        if end - start <= k:
            keep[start:end] = True
        else:
            keep[start + np.argpartition(-s.data[start:end], k - 1)[:k]] = True
    s.data = np.where(keep, s.data, 0).astype(np.float32)
    s.eliminate_zeros()
    return s


class ItemKNN(Recommender):
    """Item-based k-nearest neighbours with (shrunk) cosine similarity; ``k`` neighbours per item."""

    def __init__(self, *, k: int = 100, shrink: float = 0.0, weighting: Weighting | None = None) -> None:
        super().__init__(weighting=weighting)
        self.k = k
        self.shrink = shrink

    def _fit(self, weighted: Any) -> None:
        x = sp.csr_matrix(weighted)
        xt = sp.csr_matrix(x.T)
        norms = np.sqrt(np.asarray(xt.multiply(xt).sum(axis=1)).ravel())

        def block(start: int, stop: int) -> Any:
            sim = _without_diagonal(sp.csr_matrix(xt[start:stop] @ x), start)
            rows = np.repeat(np.arange(start, stop), np.diff(sim.indptr))
            sim.data = sim.data / (norms[rows] * norms[sim.indices] + self.shrink + 1e-9)
            return sim

        # neighbours of item i are the row; scoring needs column j = "i is a neighbour of j"
        self.similarity = sp.csr_matrix(_pruned_item_item(xt, x, block, self.k).T, dtype=np.float32)

    def _scores(self, weighted_rows: Any) -> FloatArray:
        return np.asarray((weighted_rows @ self.similarity).toarray(), dtype=np.float32)


class RP3Beta(Recommender):
    """Random walk user→item→user→item with transition probabilities raised to ``alpha``,
    divided by the target item's popularity to the power ``beta`` (Paudel et al. 2017)."""

    def __init__(
        self, *, alpha: float = 1.0, beta: float = 0.5, k: int = 200, weighting: Weighting | None = None
    ) -> None:
        super().__init__(weighting=weighting)
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def _fit(self, weighted: Any) -> None:
        x = sp.csr_matrix(weighted)
        user_to_item = _row_normalise(x).power(self.alpha)
        item_to_user = _row_normalise(sp.csr_matrix(x.T)).power(self.alpha)
        popularity = np.diff(sp.csc_matrix(x).indptr).astype(np.float32)
        penalty = sp.diags(np.power(np.maximum(popularity, 1.0), -self.beta))

        def block(start: int, stop: int) -> Any:
            walk = sp.csr_matrix(sp.csr_matrix(item_to_user[start:stop] @ user_to_item) @ penalty)
            return _without_diagonal(walk, start)

        self.similarity = sp.csr_matrix(_pruned_item_item(item_to_user, user_to_item, block, self.k), dtype=np.float32)

    def _scores(self, weighted_rows: Any) -> FloatArray:
        return np.asarray((weighted_rows @ self.similarity).toarray(), dtype=np.float32)


ITEM_BLOCK_PRODUCTS = 30_000_000  # bound on one block's item-item entries (~12 B each before pruning)


def _pruned_item_item(left: Any, right: Any, block: Any, k: int) -> Any:
    """An items × items product ``left @ right`` built ``block(start, stop)`` by block of rows, each pruned to ``k``.

    The full product holds every pair of items some user shares (up to
    items², tens of GB at 100k tracks); a block of rows is pruned to its
    ``k`` best entries per row before the next is built, so memory is bounded
    by ``ITEM_BLOCK_PRODUCTS`` plus the pruned result.  Row boundaries follow
    an upper bound on each row's entries (the multiplications it needs,
    capped at the number of items).
    """
    n_items = left.shape[0]
    bound = np.minimum(left.astype(bool).astype(np.float64) @ np.diff(sp.csr_matrix(right).indptr), right.shape[1])
    pruned, start = [], 0
    for stop in _block_stops(bound, ITEM_BLOCK_PRODUCTS):
        pruned.append(_prune_rows(block(start, stop), k))
        start = stop
    if not pruned:
        return sp.csr_matrix((n_items, right.shape[1]), dtype=np.float32)
    return sp.vstack(pruned, format="csr")


def _block_stops(bound: NDArray[np.float64], budget: float) -> list[int]:
    """Ends of consecutive row blocks whose summed ``bound`` stays within ``budget`` (a block has >= 1 row)."""
    stops, total = [], 0.0
    for row, size in enumerate(bound.tolist()):
        if total and total + size > budget:
            stops.append(row)
            total = 0.0
        total += size
    return [*stops, bound.size] if bound.size else []


def _without_diagonal(block: Any, start: int) -> Any:
    """Rows ``start…`` of an items × items matrix with each item's entry for itself removed."""
    rows = np.repeat(np.arange(start, start + block.shape[0]), np.diff(block.indptr))
    block.data[block.indices == rows] = 0
    block.eliminate_zeros()
    return block


def _row_normalise(m: Any) -> Any:
    sums = np.asarray(m.sum(axis=1)).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(sums, 1e-12)) @ m)


class EASE(Recommender):
    """Embarrassingly shallow autoencoder (Steck 2019): closed-form item-item weights with L2 ``l2``.

    Only items with at least ``min_users`` training users get a column in the
    dense weight matrix (the inverse is cubic in that count); other items
    score 0.
    """

    def __init__(self, *, l2: float = 500.0, min_users: int = 2, weighting: Weighting | None = None) -> None:
        super().__init__(weighting=weighting)
        self.l2 = l2
        self.min_users = min_users

    def _fit(self, weighted: Any) -> None:
        x = sp.csc_matrix(weighted)
        self.active = np.flatnonzero(np.diff(x.indptr) >= self.min_users)
        xa = sp.csr_matrix(x[:, self.active])
        gram = np.asarray((xa.T @ xa).toarray(), dtype=np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        weights = -inverse / np.diag(inverse)
        np.fill_diagonal(weights, 0.0)
        # C order: scipy multiplies a sparse row by a dense matrix only after copying a non-C-ordered one
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)

    def _scores(self, weighted_rows: Any) -> FloatArray:
        out = np.zeros((weighted_rows.shape[0], self.n_items), dtype=np.float32)
        active_rows = sp.csr_matrix(weighted_rows[:, self.active])
        out[:, self.active] = np.asarray(active_rows @ self.weights, dtype=np.float32)
        return out


class IALS(Recommender):
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) from the ``implicit`` library.

    Confidence is ``alpha`` × the weighted value.  Fold-in solves the user's
    least-squares problem against the fixed item factors (the library's
    ``recalculate_user``), exactly the user half-step of training.
    """

    def __init__(
        self,
        *,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
        threads: int = 2,
        seed: int = 0,
        weighting: Weighting | None = None,
    ) -> None:
        super().__init__(weighting=weighting)
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.threads = threads
        self.seed = seed

    def _fit(self, weighted: Any) -> None:
        als = _implicit_als()
        with _one_blas_thread():
            self.model = als.AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                num_threads=self.threads,
                random_state=self.seed,
            )
            self.model.fit(sp.csr_matrix(weighted, dtype=np.float32), show_progress=False)
        self._gram: NDArray[np.float64] | None = None

    def user_factors(self, weighted_rows: Any) -> FloatArray:
        """Fold-in user factors (users × factors) for already-weighted rows."""
        rows = sp.csr_matrix(weighted_rows, dtype=np.float32)
        if rows.shape[0] <= _SERVING_BATCH:
            return self._fold_in(rows)
        with _one_blas_thread():
            return np.asarray(self.model.recalculate_user(np.arange(rows.shape[0]), rows), dtype=np.float32)

    def _fold_in(self, rows: Any) -> FloatArray:
        """The same exact least-squares solve as the library's, in numpy, for the few users serving asks for.

        Per user with confidences ``c = alpha·r`` on items ``Y_u``:
        ``(YᵀY + λI + Y_uᵀ diag(c − 1) Y_u) x = Y_uᵀ c``.  Skips the library's
        per-call set-up, which costs more than the solve for one user.
        """
        items = self.model.item_factors
        gram = getattr(self, "_gram", None)  # models pickled before this cache existed lack it
        if gram is None:
            y64 = np.asarray(items, dtype=np.float64)
            gram = self._gram = y64.T @ y64 + self.regularization * np.eye(items.shape[1])
        out = np.zeros((rows.shape[0], items.shape[1]), dtype=np.float32)
        with _one_blas_thread():
            for u in range(rows.shape[0]):
                start, end = rows.indptr[u], rows.indptr[u + 1]
                if start == end:
                    continue
                y = np.asarray(items[rows.indices[start:end]], dtype=np.float64)
                c = self.alpha * rows.data[start:end].astype(np.float64)
                a = gram + (y.T * (c - 1.0)) @ y
                out[u] = scipy.linalg.solve(a, y.T @ c, assume_a="pos", check_finite=False)
        return out

    def _scores(self, weighted_rows: Any) -> FloatArray:
        factors = self.user_factors(weighted_rows)
        # implicit's OpenMP workers still spin after fold-in; a threaded BLAS call would fight them for the cores
        with _one_blas_thread():
            return np.asarray(factors @ self.model.item_factors.T, dtype=np.float32)


_SERVING_BATCH = 16  # up to this many users are folded in with numpy, more with the library's parallel solver


def _implicit_als() -> Any:
    try:
        from implicit.cpu import als
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise InvalidInput(
            "the IALS recommender needs the implicit library", hint="reinstall consentune: pip install -e ."
        ) from exc
    return als


_blas: Any = None


def _one_blas_thread() -> Any:
    """implicit parallelises over users itself; a multi-threaded BLAS underneath only oversubscribes.

    One controller is kept: building it scans the loaded libraries (~2 ms), too slow per request.
    """
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")


class Blend(Recommender):
    """Weighted sum of member models' per-user standardised scores.

    Each member keeps its own weighting; the blend passes raw counts through.
    Scores are standardised per user (zero mean, unit variance over all
    items) before weighting so members on different scales mix fairly.
    """

    def __init__(self, members: Sequence[tuple[Recommender, float]]) -> None:
        super().__init__()
        self.weighting = None
        if not members:
            raise InvalidInput("a blend needs at least one member", hint="pass [(model, weight), ...]")
        self.members = list(members)

    def _fit(self, weighted: Any) -> None:
        for model, _ in self.members:
            model.fit(weighted)

    def _scores(self, weighted_rows: Any) -> FloatArray:
        total = np.zeros((weighted_rows.shape[0], self.n_items), dtype=np.float32)
        for model, weight in self.members:
            if weight:
                total += weight * standardise(model.scores(weighted_rows))
        return total


def standardise(scores: FloatArray) -> FloatArray:
    """Per-row z-scores (users × items); constant rows become 0."""
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return np.asarray((scores - mean) / np.where(std > 0, std, 1.0), dtype=np.float32)


__all__ = ["EASE", "IALS", "Blend", "ItemKNN", "Popularity", "RP3Beta", "Recommender", "standardise", "top_n"]
