"""Fixtures for batch jobs: short synthesized songs, a two-artist catalogue, and started engines."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from consentune.demo.synth import SongSpec, encode, synthesize
from consentune.engines import LocalEngine
from consentune.service import Consentune
from consentune.types import TrackId

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def short_songs() -> list[bytes]:
    """Eight 3-second songs, all different."""
    styles = ("pop", "ambient", "techno", "lofi")
    return [
        encode(synthesize(SongSpec(seed=300 + i, duration_s=3.0, style=styles[i % 4])), 44_100, format="wav")
        for i in range(8)
    ]


@pytest.fixture
def catalogue(svc: Consentune, short_songs: list[bytes]) -> dict[str, list[TrackId]]:
    """Ada and Bo, four tracks each; ``order`` interleaves them (A0, B0, A1, B1, ...)."""
    out: dict[str, list[TrackId]] = {}
    for offset, name in enumerate(("Ada", "Bo")):
        artist = svc.catalog.add_artist(name, actor="admin:test")
        out[name] = [
            svc.catalog.ingest(data, filename=f"{name}{i}.wav", artist=artist, title=f"{name} {i}", actor="t").track.id
            for i, data in enumerate(short_songs[offset * 4 : offset * 4 + 4])
        ]
    out["order"] = [t for pair in zip(out["Ada"], out["Bo"], strict=True) for t in pair]
    return out


@pytest.fixture(scope="session")
def local_engine() -> Iterator[LocalEngine]:
    """One local worker (the machine is shared), started once for the session."""
    engine = LocalEngine(workers=1)
    engine.warm()
    yield engine
    engine.close()


def ray_or_skip() -> None:
    try:
        import ray  # noqa: F401
    except ModuleNotFoundError:
        message = "Ray is not installed (pip install 'consentune[ray]')"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
