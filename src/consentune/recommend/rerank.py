"""Exposure re-ranking: give long-tail (emerging) artists real slots in top-n lists.

The re-ranker takes a model's scores, keeps each user's best ``candidates``
eligible items, rescales their scores to [0, 1] per user, adds
``strength`` to every long-tail item and re-sorts.  ``strength`` = 0 is the
model's own ranking; 1 puts any long-tail candidate above any head item.
Sweeping it traces the accuracy/exposure frontier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from consentune.errors import InvalidInput
from consentune.recommend.models import FloatArray, IntArray, top_n

DEFAULT_STRENGTHS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)


def rerank_long_tail(
    scores: FloatArray,
    *,
    long_tail: NDArray[np.bool_],
    strength: float,
    n: int = 10,
    candidates: int = 100,
    exclude: Any | None = None,
    allowed: NDArray[np.bool_] | None = None,
) -> IntArray:
    """Top ``n`` items per user (users × n, -1 padded) after the long-tail bonus.

    Parameters
    ----------
    scores
        Model scores, users × items.
    long_tail
        Bool per item: True for long-tail (emerging) artists.
    strength
        Bonus added to long-tail items on the per-user [0, 1] scale; >= 0.
    candidates
        How many of the model's best eligible items per user may be re-ranked.
    exclude, allowed
        As in :func:`consentune.recommend.models.top_n`; disallowed items never return.
    """
    if strength < 0:
        raise InvalidInput(f"strength must be >= 0, got {strength}", hint="use 0 for the plain model ranking")
    if long_tail.shape != (scores.shape[1],):
        raise InvalidInput(
            f"long_tail has shape {long_tail.shape}, scores have {scores.shape[1]} items", hint="one flag per item"
        )
    pool = top_n(scores, n=max(n, candidates), exclude=exclude, allowed=allowed)
    valid = pool >= 0
    pool_scores = np.where(valid, np.take_along_axis(scores, np.maximum(pool, 0), axis=1), np.nan)
    low = np.nanmin(np.where(valid, pool_scores, np.inf), axis=1, keepdims=True)
    high = np.nanmax(np.where(valid, pool_scores, -np.inf), axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    scaled = (pool_scores - low) / span + strength * long_tail[np.maximum(pool, 0)]
    scaled = np.where(valid, scaled, -np.inf)
    order = np.argsort(-scaled, axis=1, kind="stable")[:, :n]
    best = np.take_along_axis(pool, order, axis=1)
    return np.asarray(best, dtype=np.int64)


def frontier_strengths(values: Sequence[float] | None = None) -> tuple[float, ...]:
    """The strengths a frontier sweep visits (sorted, unique)."""
    return tuple(sorted(set(DEFAULT_STRENGTHS if values is None else values)))


__all__ = ["DEFAULT_STRENGTHS", "frontier_strengths", "rerank_long_tail"]
