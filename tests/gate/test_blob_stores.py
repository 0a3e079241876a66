"""One behaviour suite for every blob store: the local folder and an S3-compatible object store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from consentune.errors import InvalidInput, NotFound, StorageError
from consentune.gate.blobs import BlobStore, FolderBlobStore, open_blob_store
from consentune.gate.blobs_s3 import S3BlobStore
from tests.s3server import client, s3_bucket, s3_endpoint

__all__ = ["s3_bucket", "s3_endpoint"]  # fixtures used below


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "folder":
        return open_blob_store(tmp_path / "blobs")
    endpoint: str = request.getfixturevalue("s3_endpoint")
    bucket: str = request.getfixturevalue("s3_bucket")
    return open_blob_store(f"s3://{bucket}/deploy-1", s3_endpoint_url=endpoint)


def test_a_blob_is_named_by_its_digest_and_stored_once(store: BlobStore) -> None:
    data = b"RIFF" + bytes(range(256)) * 50
    digest, created = store.put_new(data)
    assert digest == hashlib.sha256(data).hexdigest() and created
    assert store.put_new(data) == (digest, False)
    assert store.exists(digest) and store.get(digest) == data


def test_a_missing_blob_is_not_found_and_delete_is_idempotent(store: BlobStore) -> None:
    digest, _ = store.put_new(b"short-lived")
    store.delete(digest)
    store.delete(digest)
    assert not store.exists(digest)
    with pytest.raises(NotFound) as caught:
        store.get(digest)
    assert digest in caught.value.message and caught.value.hint


def test_names_that_are_not_digests_are_refused(store: BlobStore) -> None:
    for bad in ("../../etc/passwd", "A" * 64, "ab"):
        with pytest.raises(StorageError):
            store.get(bad)


def test_a_reachable_store_pings(store: BlobStore) -> None:
    store.ping()


def test_s3_layout_and_unreachable_bucket(s3_endpoint: str, s3_bucket: str) -> None:
    store = S3BlobStore.from_url(f"s3://{s3_bucket}/deploy-1/", endpoint_url=s3_endpoint)
    digest, _ = store.put_new(b"layout")
    keys = [o["Key"] for o in client(s3_endpoint).list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == [f"deploy-1/{digest[:2]}/{digest[2:4]}/{digest}"]
    with pytest.raises(StorageError) as caught:
        S3BlobStore.from_url("s3://no-such-bucket-here/x", endpoint_url=s3_endpoint).ping()
    assert "no-such-bucket-here" in caught.value.message and "CONSENTUNE_BLOB_URL" in caught.value.hint


def test_blob_locations_are_folders_or_s3(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(f"file://{tmp_path}"), FolderBlobStore)
    with pytest.raises(InvalidInput, match="not a folder or an s3:// URL"):
        open_blob_store("ftp://example.org/blobs")
