"""Nearest neighbours over track embeddings: exact (numpy) when small, HNSW (usearch) when large.

Vectors are standardised per dimension with statistics frozen when the
index is (re)built, then L2-normalised, so similarity is the cosine of
z-scored embeddings.  The index is rebuilt (new statistics) whenever it has
doubled since the last build.  Removal is immediate in both backends.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from consentune.errors import InvalidInput
from consentune.types import TrackId

F32 = npt.NDArray[np.float32]
ANN_THRESHOLD = 200_000  # exact search over 200k x 101 float32 is still ~10 ms; past that HNSW pays off


@dataclass(frozen=True, slots=True)
class Neighbour:
    track: TrackId
    similarity: float  # cosine of standardised embeddings, -1..1


class _Backend(Protocol):
    def add(self, keys: npt.NDArray[np.int64], vectors: F32) -> None: ...
    def remove(self, keys: Sequence[int]) -> None: ...
    def search(self, vector: F32, k: int) -> tuple[npt.NDArray[np.int64], F32]: ...


class _Exact:
    """Brute-force inner product; rows of removed keys are dropped at once."""

    def __init__(self, dim: int) -> None:
        self._keys = np.zeros(0, np.int64)
        self._vectors = np.zeros((0, dim), np.float32)

    def add(self, keys: npt.NDArray[np.int64], vectors: F32) -> None:
        self._keys = np.concatenate([self._keys, keys])
        self._vectors = np.concatenate([self._vectors, vectors])

    def remove(self, keys: Sequence[int]) -> None:
        keep = ~np.isin(self._keys, np.asarray(keys, np.int64))
        self._keys, self._vectors = self._keys[keep], self._vectors[keep]

    def search(self, vector: F32, k: int) -> tuple[npt.NDArray[np.int64], F32]:
        scores = self._vectors @ vector
        k = min(k, scores.size)
        if k == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return self._keys[top], scores[top]


class _Hnsw:
    """usearch's HNSW index (cosine metric); install with ``pip install 'consentune[ann]'``."""

    def __init__(self, dim: int) -> None:
        try:
            from usearch.index import Index
        except ImportError as exc:  # pragma: no cover - exercised only without the extra
            raise InvalidInput(
                "the catalogue is large enough for approximate search but usearch is not installed",
                hint="pip install 'consentune[ann]'",
            ) from exc
        self._index: Any = Index(ndim=dim, metric="ip", dtype="f32", connectivity=16, expansion_add=128,
                                 expansion_search=64)  # fmt: skip

    def add(self, keys: npt.NDArray[np.int64], vectors: F32) -> None:
        self._index.add(keys.astype(np.uint64), vectors)

    def remove(self, keys: Sequence[int]) -> None:
        for key in keys:
            self._index.remove(int(key))

    def search(self, vector: F32, k: int) -> tuple[npt.NDArray[np.int64], F32]:
        found = self._index.search(vector, k)
        return np.asarray(found.keys, np.int64), (1.0 - np.asarray(found.distances, np.float32))


class SimilarityIndex:
    """Thread-safe track → embedding index with cosine-of-z-scores similarity."""

    def __init__(self, *, dim: int, ann_threshold: int = ANN_THRESHOLD) -> None:
        self._dim = dim
        self._ann_threshold = ann_threshold
        self._lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        self._key_of: dict[TrackId, int] = {}
        self._track_of: dict[int, TrackId] = {}
        self._raw: dict[TrackId, F32] = {}
        self._mean = np.zeros(self._dim, np.float32)
        self._scale = np.ones(self._dim, np.float32)
        self._backend: _Backend = _Exact(self._dim)
        self._built_size = 0
        self._next_key = 0

    @property
    def backend(self) -> str:
        return "hnsw" if isinstance(self._backend, _Hnsw) else "exact"

    def __len__(self) -> int:
        return len(self._key_of)

    def __contains__(self, track: object) -> bool:
        return track in self._key_of

    def tracks(self) -> list[TrackId]:
        with self._lock:
            return list(self._key_of)

    def build(self, tracks: Sequence[TrackId], vectors: F32) -> None:
        """Replace the whole index; statistics come from ``vectors`` shaped (n, dim)."""
        vectors = self._check(vectors, len(tracks))
        with self._lock:
            self._clear()
            self._rebuild(list(tracks), vectors)

    def add(self, tracks: Sequence[TrackId], vectors: F32) -> None:
        """Add or replace tracks; rebuilds with fresh statistics once the index has doubled."""
        vectors = self._check(vectors, len(tracks))
        with self._lock:
            existing = [t for t in tracks if t in self._key_of]
            self._remove_locked(existing)
            if len(self._key_of) + len(tracks) >= max(2 * self._built_size, 16):
                all_tracks = [*self._raw, *tracks]
                stacked = np.concatenate([np.stack(list(self._raw.values())), vectors]) if self._raw else vectors
                self._clear()
                self._rebuild(all_tracks, stacked)
            else:
                self._insert(list(tracks), vectors)

    def remove(self, tracks: Sequence[TrackId]) -> int:
        with self._lock:
            return self._remove_locked([t for t in tracks if t in self._key_of])

    def query(self, track: TrackId, *, n: int = 10) -> list[Neighbour] | None:
        """The ``n`` most similar other tracks, or None if ``track`` is not indexed."""
        with self._lock:
            raw = self._raw.get(track)
            if raw is None:
                return None
            return self._search(self._normalise(raw[None, :])[0], n, exclude=track)

    def query_vector(self, vector: F32, *, n: int = 10) -> list[Neighbour]:
        with self._lock:
            return self._search(self._normalise(self._check(vector[None, :], 1))[0], n, exclude=None)

    # -- internals (lock held) ---------------------------------------------
    def _check(self, vectors: F32, rows: int) -> F32:
        array = np.asarray(vectors, np.float32)
        if array.ndim != 2 or array.shape != (rows, self._dim):
            raise InvalidInput(
                f"expected {rows} vectors of {self._dim} dimensions, got shape {array.shape}",
                hint="re-run `consentune organize analyze` so every embedding has the current dimension",
            )
        return array

    def _normalise(self, vectors: F32) -> F32:
        z = (vectors - self._mean) / self._scale
        norms = np.linalg.norm(z, axis=1, keepdims=True)
        return np.asarray(z / np.maximum(norms, 1e-12), dtype=np.float32)

    def _rebuild(self, tracks: list[TrackId], vectors: F32) -> None:
        if len(tracks):
            self._mean = vectors.mean(axis=0)
            std = vectors.std(axis=0)
            self._scale = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        self._backend = _Hnsw(self._dim) if len(tracks) >= self._ann_threshold else _Exact(self._dim)
        self._built_size = len(tracks)
        self._insert(tracks, vectors)

    def _insert(self, tracks: list[TrackId], vectors: F32) -> None:
        if not tracks:
            return
        keys = np.arange(self._next_key, self._next_key + len(tracks), dtype=np.int64)
        self._next_key += len(tracks)
        for track, key, vector in zip(tracks, keys.tolist(), vectors, strict=True):
            self._key_of[track], self._track_of[key], self._raw[track] = key, track, vector
        self._backend.add(keys, self._normalise(vectors))

    def _remove_locked(self, tracks: list[TrackId]) -> int:
        keys = [self._key_of.pop(t) for t in tracks]
        for key, track in zip(keys, tracks, strict=True):
            del self._track_of[key], self._raw[track]
        if keys:
            self._backend.remove(keys)
        return len(keys)

    def _search(self, vector: F32, n: int, *, exclude: TrackId | None) -> list[Neighbour]:
        keys, scores = self._backend.search(vector, n + 1)
        out = []
        for key, score in zip(keys.tolist(), scores.tolist(), strict=True):
            track = self._track_of.get(key)
            if track is not None and track != exclude:
                out.append(Neighbour(track, round(float(score), 6)))
        return out[:n]


__all__ = ["ANN_THRESHOLD", "Neighbour", "SimilarityIndex"]
