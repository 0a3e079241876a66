"""Dense-block search on a weighted bipartite graph by greedy peeling (vectorised).

Rows are accounts; columns are tracks and shared infrastructure (networks,
devices).  A block's density is (sum of edge weights inside it + sum of its
rows' and columns' priors) / (number of rows + columns) — FRAUDAR's
objective.  Peeling removes, each round, every node whose weighted degree
is below ``(1 + eps)`` times the current average degree (Bahmani et al.'s
parallel peeling, here in numpy) and keeps the densest set seen; the block
found is removed and the search repeats for the next one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from consentune.fraud.encode import F64, I32

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Graph:
    """Edges ``rows[i] -> cols[i]`` with ``weights[i]``; node priors per row and per column."""

    rows: I32
    cols: I32
    weights: F64
    row_prior: F64  # shape (n_rows,)
    col_prior: F64  # shape (n_cols,)


@dataclass(frozen=True)
class Block:
    rows: I32  # row ids in the block
    cols: I32
    density: float
    core_rows: int = 0  # rows found by peeling; the rest joined by expansion


def column_weights(degree: F64, *, c: float = 5.0) -> F64:
    """FRAUDAR's log-weighted column suspiciousness: popular columns count less."""
    out: F64 = 1.0 / np.log(degree + c)
    return out


def densest(graph: Graph, *, alive_rows: BoolArray, alive_cols: BoolArray, eps: float = 0.05) -> Block:
    """The densest block among the alive nodes (approximate, by batch peeling)."""
    n_rows = graph.row_prior.shape[0]
    alive_r = alive_rows.copy()
    alive_c = alive_cols.copy()
    best = Block(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32), 0.0)
    for _ in range(1000):
        live = alive_r[graph.rows] & alive_c[graph.cols]
        r, c, w = graph.rows[live], graph.cols[live], graph.weights[live]
        deg_r = np.bincount(r, weights=w, minlength=n_rows) + graph.row_prior
        deg_c = np.bincount(c, weights=w, minlength=graph.col_prior.shape[0]) + graph.col_prior
        deg_r[~alive_r] = np.inf
        deg_c[~alive_c] = np.inf
        size = int(alive_r.sum() + alive_c.sum())
        if size == 0:
            break
        mass = float(w.sum() + graph.row_prior[alive_r].sum() + graph.col_prior[alive_c].sum())
        density = mass / size
        if density > best.density:
            best = Block(np.flatnonzero(alive_r).astype(np.int32), np.flatnonzero(alive_c).astype(np.int32), density)
        # average weighted degree: each edge counts at both ends, a prior once
        cut = (1.0 + eps) * (2.0 * float(w.sum()) + mass - float(w.sum())) / size
        drop_r = alive_r & (deg_r <= cut)
        drop_c = alive_c & (deg_c <= cut)
        if not drop_r.any() and not drop_c.any():
            lowest_r = float(deg_r.min()) if alive_r.any() else np.inf
            lowest_c = float(deg_c.min()) if alive_c.any() else np.inf
            drop_r = alive_r & (deg_r <= min(lowest_r, lowest_c))
            drop_c = alive_c & (deg_c <= min(lowest_r, lowest_c))
        alive_r &= ~drop_r
        alive_c &= ~drop_c
    return best


def expand(graph: Graph, block: Block, *, alive_rows: BoolArray, share: float = 0.5) -> Block:
    """Add alive rows tied to the block's columns at least ``share`` as strongly as its average row.

    Peeling keeps the densest core of a group (in a random block the rows of
    above-average degree); expansion brings back the group's other rows so
    one attack is one block, while a fan who touched one of its tracks stays out.
    """
    if len(block.rows) == 0:
        return block
    n_cols = graph.col_prior.shape[0]
    in_rows = np.zeros(graph.row_prior.shape[0], dtype=bool)
    in_rows[block.rows] = True
    # only columns the block owns: most of their rows are in it (a hit song with a few bots is not)
    from_block = np.bincount(graph.cols[in_rows[graph.rows]], minlength=n_cols)
    degree = np.bincount(graph.cols, minlength=n_cols)
    in_cols = np.zeros(n_cols, dtype=bool)
    in_cols[block.cols] = True
    in_cols &= (from_block >= 3) & (from_block >= 0.5 * degree)
    touching = in_cols[graph.cols]
    mass = np.bincount(graph.rows[touching], weights=graph.weights[touching], minlength=graph.row_prior.shape[0])
    typical = float(mass[block.rows].mean())
    joined = alive_rows & (mass >= share * typical) & (mass > 0)
    joined[block.rows] = True
    return Block(np.flatnonzero(joined).astype(np.int32), block.cols, block.density, len(block.rows))


def top_blocks(graph: Graph, *, k: int, eps: float = 0.05, min_rows: int = 2) -> Iterator[Block]:
    """Up to ``k`` disjoint dense blocks, densest first, each expanded; its nodes then leave the graph.

    A generator: a caller that has seen enough stops the search early.
    """
    alive_r = np.zeros(graph.row_prior.shape[0], dtype=bool)
    alive_c = np.zeros(graph.col_prior.shape[0], dtype=bool)
    alive_r[graph.rows] = True
    alive_c[graph.cols] = True
    alive_r |= graph.row_prior > 0
    for _ in range(k):
        if not alive_r.any():
            break
        block = expand(graph, densest(graph, alive_rows=alive_r, alive_cols=alive_c, eps=eps), alive_rows=alive_r)
        if len(block.rows) < min_rows:
            break
        yield block
        alive_r[block.rows] = False
        alive_c[block.cols] = False


__all__ = ["Block", "Graph", "column_weights", "densest", "expand", "top_blocks"]
