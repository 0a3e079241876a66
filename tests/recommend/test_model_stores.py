"""One behaviour suite for model stores (folder, S3-compatible bucket) and the seal shared stores add."""

from __future__ import annotations

from pathlib import Path

import pytest

from consentune.artifacts import open_model_store
from consentune.errors import NotFound, VerificationFailed
from consentune.recommend.store import FolderModelStore, ModelStore, SealedModels
from tests.s3server import s3_bucket, s3_endpoint

__all__ = ["s3_bucket", "s3_endpoint"]  # fixtures used below
KEY = b"k" * 32


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ModelStore:
    if request.param == "folder":
        return open_model_store(str(tmp_path / "models"), shared=False, key=KEY)
    bucket: str = request.getfixturevalue("s3_bucket")
    endpoint: str = request.getfixturevalue("s3_endpoint")
    return open_model_store(f"s3://{bucket}/deploy/models", shared=True, key=KEY, s3_endpoint_url=endpoint)


def test_the_newest_name_wins_and_reads_back(store: ModelStore) -> None:
    assert store.newest() is None
    for name in ("rec_20261001T100000_aa", "rec_20261003T090000_cc", "rec_20261002T120000_bb"):
        store.put(name, name.encode() * 100)
    assert store.newest() == "rec_20261003T090000_cc"
    assert store.get("rec_20261002T120000_bb") == b"rec_20261002T120000_bb" * 100
    with pytest.raises(NotFound):
        store.get("rec_19990101T000000_zz")


def test_a_sealed_model_with_another_key_or_changed_bytes_is_refused(tmp_path: Path) -> None:
    folder = FolderModelStore(tmp_path / "m")
    SealedModels(folder, key=KEY).put("rec_1", b"model bytes")
    assert SealedModels(folder, key=KEY).get("rec_1") == b"model bytes"
    with pytest.raises(VerificationFailed):
        SealedModels(folder, key=b"x" * 32).get("rec_1")
    raw = folder.get("rec_1")
    folder.put("rec_1", raw[:-1] + b"!")
    with pytest.raises(VerificationFailed):
        SealedModels(folder, key=KEY).get("rec_1")
