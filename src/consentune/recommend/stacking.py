"""Two-stage recommender: members propose candidates, a logistic stage re-scores them as hit probabilities.

Why: each member model is good at something different (iALS at the head,
item-kNN and RP3beta at rarer artists).  Summing their scores with fixed
weights cannot tell *when* to trust which one; a small logistic model over
per-candidate features learned on a holdout of the training data can, and
its outputs are probabilities on one scale for head and long-tail items
alike.  That shared scale is what lets the exposure knob trade accuracy for
emerging artists' reach efficiently: a long-tail item gets a fixed bonus in
probability, so it enters a list only where it is nearly as likely to be
played as the head item it displaces.

The exposure knob is a *target share* of long-tail slots; the bonus that
meets it is found by bisection on the training users' own lists (no test
data), so an operator asks for "12 % of slots for emerging artists" and gets
it, whatever the data.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from numpy.typing import NDArray

from consentune.errors import InvalidInput
from consentune.recommend.interactions import holdout_split
from consentune.recommend.metrics import long_tail_mask
from consentune.recommend.models import FloatArray, Recommender, top_n

_log = logging.getLogger(__name__)
CALIBRATION_USERS = 20_000  # the stage is learned, and the long-tail bonus calibrated, on at most this many users
SAMPLE_CELLS = 200_000_000  # ... and on fewer when users × items would pass this (every member scores every item)
MIN_SAMPLE_USERS = 2_000  # but never fewer than this: ~300k candidates to learn 12 weights, bonus within ~±0.003
SCORE_CELLS = 16_000_000  # users × items one member scores at once while candidates are built (~64 MB float32)
MIN_HITS = 20  # fewer held-out hits than this and the stage would learn noise: average the members instead
NOT_A_CANDIDATE = -1.0  # below every probability + bonus, so non-candidates rank last but stay finite


class LogisticStage:
    """L2-regularised logistic regression on standardised features (L-BFGS), numpy + scipy only."""

    def __init__(self, *, l2: float = 1.0) -> None:
        if l2 < 0:
            raise InvalidInput(f"l2 must be >= 0, got {l2}", hint="use e.g. 1.0")
        self.l2 = l2
        self.mean: NDArray[np.float64] | None = None
        self.scale: NDArray[np.float64] | None = None
        self.coef: NDArray[np.float64] | None = None
        self.intercept = 0.0

    def fit(self, features: NDArray[Any], labels: NDArray[Any]) -> LogisticStage:
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(labels, dtype=np.float64).ravel()
        if x.ndim != 2 or x.shape[0] != y.size:
            raise InvalidInput(f"features {x.shape} and labels {y.shape} disagree", hint="one label per feature row")
        if y.size == 0 or y.min() == y.max():
            raise InvalidInput("logistic stage needs both hits and misses", hint="train on more users or plays")
        self.mean = x.mean(axis=0)
        std = x.std(axis=0)
        # a (near-)constant feature carries nothing; scaling its rounding noise up would blow up new inputs
        self.scale = np.where(std > 1e-6 * (1.0 + np.abs(self.mean)), std, 1.0)
        z = (x - self.mean) / self.scale
        n, d = z.shape

        def loss(w: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            margin = z @ w[:d] + w[d]
            # log(1 + e^m) - y·m, stably; gradient through the sigmoid
            value = np.logaddexp(0.0, margin).sum() - y @ margin + 0.5 * self.l2 * w[:d] @ w[:d]
            residual = 1.0 / (1.0 + np.exp(-margin)) - y
            grad = np.concatenate([z.T @ residual + self.l2 * w[:d], [residual.sum()]])
            return float(value / n), grad / n

        result = scipy.optimize.minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B")
        self.coef, self.intercept = result.x[:d], float(result.x[d])
        return self

    @classmethod
    def fixed(cls, coef: NDArray[Any], intercept: float = 0.0) -> LogisticStage:
        """A stage with given weights on raw features (used when there is too little data to learn one)."""
        stage = cls()
        stage.coef = np.asarray(coef, dtype=np.float64)
        stage.mean, stage.scale = np.zeros_like(stage.coef), np.ones_like(stage.coef)
        stage.intercept = intercept
        return stage

    def predict(self, features: NDArray[Any]) -> NDArray[np.float64]:
        """Probability of a hit per feature row."""
        if self.coef is None or self.mean is None or self.scale is None:
            raise InvalidInput("logistic stage is not fitted", hint="call fit(features, labels) first")
        margin = ((np.asarray(features, dtype=np.float64) - self.mean) / self.scale) @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-margin)), dtype=np.float64)


class TwoStage(Recommender):
    """Union of each member's top ``candidates`` per user, scored by a :class:`LogisticStage`.

    ``fit`` splits the training rows (per user, ``holdout`` of each user's
    items, seeded), fits copies of the members on the rest, learns the
    logistic stage on which candidates were held out, then fits the members
    on all rows.  With too little data to learn from (fewer than
    ``MIN_HITS`` held-out hits among the candidates) the stage averages the
    members' standardised scores.
    :meth:`refit` retrains only the members and keeps the stage — the cheap
    periodic retrain.  ``long_tail_target`` (0–1) is the
    share of top-``n`` slots given to long-tail items (outside the top 20 %
    by training listeners); 0 is the stage's own ranking.
    ``popularity_damping`` β multiplies each probability by
    ``(1 + listeners)^-β``: a gentle push from the most-exposed artists to
    the rest of the head, which spreads exposure (coverage, Gini) beyond
    what a long-tail share alone does.
    """

    def __init__(
        self,
        members: Sequence[Recommender],
        *,
        candidates: int = 60,
        l2: float = 1.0,
        long_tail_target: float = 0.0,
        popularity_damping: float = 0.0,
        n: int = 10,
        holdout: float = 0.2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.weighting = None  # members weigh raw counts themselves
        if not members:
            raise InvalidInput("a two-stage model needs at least one member", hint="pass [IALS(...), ItemKNN(...)]")
        _check_target(long_tail_target)
        self.members = list(members)
        self.candidates = candidates
        self.long_tail_target = long_tail_target
        self.popularity_damping = popularity_damping
        self.n = n
        self.holdout = holdout
        self.seed = seed
        self.stage = LogisticStage(l2=l2)
        self.learned = False  # False: too little data, the stage averages the members
        self.bonus = 0.0
        self.listeners: NDArray[np.float64] = np.zeros(0)
        self.long_tail: NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self._damping: NDArray[np.float64] = np.zeros(0)  # (1 + listeners)^-β per item, set with the exposure
        self._calibration = _NO_CALIBRATION

    # -- training -------------------------------------------------------------
    def _fit(self, weighted: Any) -> None:
        with _phase("holdout split"):
            inner_train, inner_test = holdout_split(weighted, fraction=self.holdout, seed=self.seed)
        users = _sample(np.flatnonzero(np.diff(inner_test.indptr) > 0), self.seed, items=weighted.shape[1])
        inner_members = [copy.deepcopy(m) for m in self.members]
        for member in inner_members:
            with _phase(f"inner {type(member).__name__}.fit"):
                member.fit(inner_train)
        rows = inner_train[users]
        with _phase(f"stage features, {users.size} users"):
            listeners, tail = _item_listeners(inner_train), long_tail_mask(inner_train)
            cand, features = self._features(inner_members, rows, listeners, tail)
        del inner_members
        labels = _held_out(inner_test[users], cand)
        if MIN_HITS <= labels.sum() < labels.size:
            with _phase(f"stage fit, {labels.size} candidates"):
                self.stage.fit(features, labels)
            self.learned = True
        else:  # a new platform with a handful of plays: average the members' scores instead
            per_member = np.zeros(features.shape[1])
            per_member[0 : 2 * len(self.members) : 2] = 1.0 / len(self.members)
            self.stage = LogisticStage.fixed(per_member)
            self.learned = False
        self.refit(weighted)

    def refit(self, matrix: Any) -> None:
        """Retrain the members on ``matrix`` (raw counts) and keep the learned stage; re-calibrates the bonus."""
        x = sp.csr_matrix(matrix, dtype=np.float32)
        self.n_items = x.shape[1]
        for member in self.members:
            with _phase(f"{type(member).__name__}.fit"):
                member.fit(x)
        self.listeners = _item_listeners(x)
        self.long_tail = long_tail_mask(x)
        self._damping = np.power(1.0 + self.listeners, -self.popularity_damping)
        with _phase("calibration lists"):
            self._calibration = self._calibration_lists(x)
        self.bonus = self._calibrate_bonus()

    def __getstate__(self) -> dict[str, Any]:
        """Saved models leave out the calibration lists (users × candidates): serving needs only the bonus."""
        return {**self.__dict__, "_calibration": _NO_CALIBRATION}

    def set_exposure(self, *, long_tail_target: float, popularity_damping: float | None = None) -> None:
        """Change the long-tail share (and damping); the bonus is re-calibrated on the last training rows."""
        _check_target(long_tail_target)
        if long_tail_target > 0 and self._calibration[0].shape[0] == 0:
            raise InvalidInput(
                "this model has no calibration lists (it was loaded from disk or never fitted)",
                hint="refit(matrix) it on the training plays, then set the exposure",
            )
        self.long_tail_target = long_tail_target
        if popularity_damping is not None:
            self.popularity_damping = popularity_damping
            self._damping = np.power(1.0 + self.listeners, -popularity_damping)
        self.bonus = self._calibrate_bonus()

    def _calibration_lists(self, x: Any) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Candidates and probabilities for (a sample of) the training users, as padded users × slots arrays."""
        users = _sample(np.flatnonzero(np.diff(x.indptr) > 0), self.seed, items=x.shape[1])
        cand, features = self._features(self.members, x[users], self.listeners, self.long_tail)
        probability = self.stage.predict(features)
        counts = np.bincount(cand.users, minlength=users.size)
        width = max(1, int(counts.max(initial=0)))
        slot = np.arange(cand.users.size) - np.repeat(np.cumsum(counts) - counts, counts)
        items = np.full((users.size, width), -1, dtype=np.int64)
        values = np.full((users.size, width), NOT_A_CANDIDATE, dtype=np.float64)
        items[cand.users, slot] = cand.items
        values[cand.users, slot] = probability
        return items, values

    def _calibrate_bonus(self) -> float:
        """Smallest long-tail bonus whose training users' lists give ``long_tail_target`` of the slots."""
        if self.long_tail_target <= 0:
            return 0.0
        items, probability = self._calibration
        valid = items >= 0
        safe = np.maximum(items, 0)
        tail = self.long_tail[safe] & valid
        n = min(self.n, items.shape[1])

        def share(bonus: float) -> float:
            scores = np.where(valid, _exposed(probability, self._damping[safe], self.long_tail[safe], bonus), -np.inf)
            top = np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < items.shape[1] else np.argsort(-scores, axis=1)
            filled = np.take_along_axis(valid, top, axis=1)
            return float(np.take_along_axis(tail, top, axis=1)[filled].mean()) if filled.any() else 0.0

        low, high = 0.0, 1.0
        if share(high) < self.long_tail_target:
            return high  # every long-tail candidate first: the most this model can give
        for _ in range(20):
            mid = (low + high) / 2
            low, high = (mid, high) if share(mid) < self.long_tail_target else (low, mid)
        return high

    # -- scoring --------------------------------------------------------------
    def _scores(self, weighted_rows: Any) -> FloatArray:
        return self._final(self._probabilities(sp.csr_matrix(weighted_rows, dtype=np.float32)), self.bonus)

    def hit_probabilities(self, user_rows: Any) -> FloatArray:
        """The stage's hit probability per (user, item); non-candidates get ``NOT_A_CANDIDATE``.

        With :meth:`with_exposure` this scores many exposure settings for the
        price of one pass over the members (how a frontier is swept).
        """
        return self._probabilities(sp.csr_matrix(user_rows, dtype=np.float32))

    def with_exposure(self, probability: FloatArray) -> FloatArray:
        """Final scores from :meth:`hit_probabilities` under the current damping and long-tail bonus."""
        return self._final(probability, self.bonus)

    def _final(self, probability: FloatArray, bonus: float) -> FloatArray:
        boosted = _exposed(probability, self._damping, self.long_tail, bonus)
        return np.asarray(np.where(probability > NOT_A_CANDIDATE, boosted, NOT_A_CANDIDATE), dtype=np.float32)

    def _probabilities(self, rows: Any) -> FloatArray:
        cand, features = self._features(self.members, rows, self.listeners, self.long_tail)
        out = np.full((rows.shape[0], self.n_items), NOT_A_CANDIDATE, dtype=np.float32)
        if cand.users.size:
            out[cand.users, cand.items] = self.stage.predict(features)
        return out

    def _features(
        self, members: Sequence[Recommender], rows: Any, listeners: NDArray[Any], long_tail: NDArray[np.bool_]
    ) -> tuple[_Candidates, NDArray[np.float64]]:
        """Candidates (unseen, from any member's top list) and their features, one row per (user, item).

        Users are taken in batches of about ``SCORE_CELLS / items`` so no
        member's scores for more than that many (user, item) cells exist at
        once: memory stays bounded however many users and items there are.
        Every feature is per user, so batching changes no value.
        """
        rows = sp.csr_matrix(rows)
        n_users, n_items = rows.shape
        batches = max(1, -(-n_users * max(1, n_items) // SCORE_CELLS))
        users, items, blocks = [], [], []
        for part in np.array_split(np.arange(n_users), min(batches, max(1, n_users))):
            start = int(part[0]) if part.size else 0
            cand, features = self._batch_features(members, rows[start : start + part.size], listeners, long_tail)
            users.append(cand.users + start)
            items.append(cand.items)
            blocks.append(features)
        return _Candidates(np.concatenate(users), np.concatenate(items)), np.concatenate(blocks)

    def _batch_features(
        self, members: Sequence[Recommender], rows: Any, listeners: NDArray[Any], long_tail: NDArray[np.bool_]
    ) -> tuple[_Candidates, NDArray[np.float64]]:
        raw = [m.scores(rows) for m in members]
        # top lists and per-user z-scores need only each row's order, mean and spread: no standardised copy
        tops = np.concatenate([top_n(r, n=self.candidates, exclude=rows) for r in raw], axis=1)
        cand = _Candidates.of(tops)
        history = np.log1p(np.diff(sp.csr_matrix(rows).indptr)).astype(np.float64)
        tail = long_tail[cand.items].astype(np.float64)
        per_member = []
        for r in raw:
            mean = r.mean(axis=1, dtype=np.float64)
            std = r.std(axis=1, dtype=np.float64)
            value = (r[cand.users, cand.items] - mean[cand.users]) / np.where(std > 0, std, 1.0)[cand.users]
            best = np.full(rows.shape[0], -np.inf)
            np.maximum.at(best, cand.users, value)
            per_member += [value, value - best[cand.users]]
        del raw
        member_block = np.column_stack(per_member)
        features = np.column_stack(
            [member_block, np.log1p(listeners[cand.items]), history[cand.users], tail, member_block * tail[:, None]]
        )
        return cand, features


class _Candidates:
    """Parallel (user row, item column) arrays of unique candidates."""

    def __init__(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> None:
        self.users, self.items = users, items

    @classmethod
    def of(cls, tops: NDArray[np.int64]) -> _Candidates:
        users = np.repeat(np.arange(tops.shape[0], dtype=np.int64), tops.shape[1])
        items = tops.ravel()
        keep = items >= 0
        pairs = np.unique(np.stack([users[keep], items[keep]], axis=1), axis=0)
        return cls(pairs[:, 0].copy(), pairs[:, 1].copy())


def _exposed(probability: NDArray[Any], damping: NDArray[Any], long_tail: NDArray[np.bool_], bonus: float) -> Any:
    """The one exposure formula: damped hit probability plus the long-tail bonus."""
    return probability * damping + bonus * long_tail


def _check_target(target: float) -> None:
    if not 0.0 <= target < 1.0:
        raise InvalidInput(f"long_tail_target must be in [0, 1), got {target}", hint="use e.g. 0.12")


_NO_CALIBRATION: tuple[NDArray[np.int64], NDArray[np.float64]] = (np.zeros((0, 1), dtype=np.int64), np.zeros((0, 1)))


def _held_out(test_rows: Any, cand: _Candidates) -> NDArray[np.bool_]:
    """Whether each candidate was held out (a hit).

    Scipy answers fancy indexing with empty index arrays by a sparse matrix,
    not an empty array; on a tiny catalogue every item may already be seen, so
    there may be no candidates at all.
    """
    if cand.users.size == 0:
        return np.zeros(0, dtype=bool)
    picked = sp.csr_matrix(test_rows)[cand.users, cand.items]
    return np.asarray(picked, dtype=np.float64).ravel() > 0


@contextmanager
def _phase(name: str) -> Iterator[None]:
    """Log a fitting phase's wall and CPU seconds (``consentune.recommend.stacking``, level INFO)."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    _log.info("%s: %.1f s wall, %.1f CPU-s", name, time.perf_counter() - wall, time.process_time() - cpu)


def _sample(users: NDArray[np.int64], seed: int, *, items: int) -> NDArray[np.int64]:
    """A seeded sample of ``users`` (in row order) small enough to score every one of ``items`` for each.

    At most ``CALIBRATION_USERS``, and at most ``SAMPLE_CELLS / items`` but
    not below ``MIN_SAMPLE_USERS``: the cost of learning the stage and
    calibrating the bonus then stays bounded as the catalogue grows.
    """
    size = min(CALIBRATION_USERS, max(MIN_SAMPLE_USERS, SAMPLE_CELLS // max(1, items)))
    if users.size <= size:
        return users
    return np.sort(np.random.default_rng(seed).choice(users, size=size, replace=False))


def _item_listeners(x: Any) -> NDArray[np.float64]:
    return np.asarray(np.diff(sp.csc_matrix(x).indptr), dtype=np.float64)


__all__ = ["LogisticStage", "TwoStage"]
