"""The audfprint peer (PyPI ``audfprint2``, a packaged fork of Dan Ellis's audfprint) with its CLI defaults.

Optional: ``pip install 'consentune[bench]'``.  Defaults mirror
``audfprint new`` / ``audfprint match``: density 20 hashes/s, fanout 3,
20-bit hashes in buckets of 100, one frame shift when indexing and four
when matching, and a minimum of 5 aligned hashes for a match.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

PEER_SR = 11_025  # Hz, audfprint's analysis rate
_QUERY_SHIFTS = 4


def load_peer() -> Any | None:
    """The audfprint2 modules, or None when the package is not installed."""
    try:
        from audfprint2.core import analyzer, hash_table, matcher  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    return (analyzer, hash_table, matcher)


class AudfprintPeer:
    def __init__(self, modules: Any) -> None:
        self._analyzer_mod, hash_table, matcher = modules
        self._analyzer = self._analyzer_mod.Analyzer()
        self._table = hash_table.HashTable(hashbits=20, depth=100, maxtime=16384)
        self._matcher = matcher.Matcher()

    def add(self, name: str, samples: npt.NDArray[np.float32]) -> None:
        self._table.store(name, self._hashes(samples, shifts=1))

    def match(self, samples: npt.NDArray[np.float32]) -> str | None:
        """Top match's name if it reaches audfprint's minimum count, else None."""
        hashes = self._hashes(samples, shifts=_QUERY_SHIFTS)
        if hashes.shape[0] == 0:
            return None
        results = self._matcher.match_hashes(self._table, hashes)
        if len(results) == 0 or int(results[0][1]) < self._matcher.threshcount:
            return None
        return str(self._table.names[int(results[0][0])])

    def size_bytes(self) -> int:
        """Size of the in-memory hash table as stored (entries are 32-bit)."""
        return int(self._table.table.size * 4)

    def _hashes(self, samples: npt.NDArray[np.float32], *, shifts: int) -> npt.NDArray[np.int32]:
        hop = self._analyzer.n_hop
        parts = []
        for shift in range(shifts):
            start = int(shift / shifts * hop)
            peaks = self._analyzer.find_peaks(samples[start:].astype(np.float64), PEER_SR)
            parts.append(self._analyzer_mod.landmarks2hashes(self._analyzer.peaks2landmarks(peaks)))
        hashes = np.concatenate(parts) if parts else np.zeros((0, 2), np.int32)
        return np.unique(hashes, axis=0).astype(np.int32) if hashes.size else np.zeros((0, 2), np.int32)


__all__ = ["PEER_SR", "AudfprintPeer", "load_peer"]
