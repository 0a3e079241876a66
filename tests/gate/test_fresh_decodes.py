"""The gate keeps an upload's validation decode for its ingest hook: taken once, bounded, never stale."""

from __future__ import annotations

import numpy as np

from consentune.gate.fresh import FreshDecodes


def test_an_entry_is_taken_once_and_only_for_its_shape() -> None:
    fresh = FreshDecodes(max_samples=100)
    samples = np.arange(10, dtype=np.float32)
    fresh.put(("sha-a", True, 8000), samples, 8000)
    assert fresh.take(("sha-a", True, 16000)) is None
    found = fresh.take(("sha-a", True, 8000))
    assert found is not None and found[1] == 8000 and found[0] is samples
    assert fresh.take(("sha-a", True, 8000)) is None


def test_the_oldest_go_first_when_the_budget_is_full_and_an_oversized_one_is_not_kept() -> None:
    fresh = FreshDecodes(max_samples=25)
    for name in ("a", "b", "c"):
        fresh.put((name, True, 8000), np.zeros(10, np.float32), 8000)
    fresh.put(("huge", True, 8000), np.zeros(26, np.float32), 8000)
    assert fresh.take(("a", True, 8000)) is None
    assert fresh.take(("huge", True, 8000)) is None
    assert fresh.take(("b", True, 8000)) is not None and fresh.take(("c", True, 8000)) is not None


def test_forget_drops_every_shape_of_one_upload() -> None:
    fresh = FreshDecodes()
    fresh.put(("a", True, 8000), np.zeros(4, np.float32), 8000)
    fresh.put(("a", False, None), np.zeros((4, 2), np.float32), 44100)
    fresh.put(("b", True, 8000), np.zeros(4, np.float32), 8000)
    fresh.forget("a")
    assert fresh.take(("a", True, 8000)) is None and fresh.take(("a", False, None)) is None
    assert fresh.take(("b", True, 8000)) is not None
