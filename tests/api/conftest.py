"""An in-process HTTP client on a real service, with one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.service import Consentune
from consentune.types import Artist, ArtistId, Role


@dataclass
class World:
    client: TestClient
    svc: Consentune
    admin: dict[str, str]
    service: dict[str, str]
    ada: Artist
    bo: Artist
    ada_key: dict[str, str]
    bo_key: dict[str, str]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def world(svc: Consentune) -> Iterator[World]:
    ada = svc.catalog.add_artist("Ada", actor="admin:test")
    bo = svc.catalog.add_artist("Bo", actor="admin:test")
    keys = {
        "admin": svc.keys.create(role=Role.ADMIN)[1],
        "service": svc.keys.create(role=Role.SERVICE)[1],
        "ada": svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(ada.id))[1],
        "bo": svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(bo.id))[1],
    }
    with TestClient(create_app(svc), raise_server_exceptions=False) as client:
        yield World(
            client,
            svc,
            _bearer(keys["admin"]),
            _bearer(keys["service"]),
            ada,
            bo,
            _bearer(keys["ada"]),
            _bearer(keys["bo"]),
        )
