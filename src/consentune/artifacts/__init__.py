"""Artifacts every machine reads: trained models in a folder or an S3-compatible bucket.

An adapter room beside ``storage/``: the recommender sees only its
:class:`~consentune.recommend.store.ModelStore` port.
"""

from __future__ import annotations

from pathlib import Path

from consentune.recommend.store import FolderModelStore, ModelStore, SealedModels


def open_model_store(location: str, *, shared: bool, key: bytes, s3_endpoint_url: str | None = None) -> ModelStore:
    """A folder path or ``s3://bucket/prefix``; ``shared`` stores seal every model with ``key``.

    The private default (``CONSENTUNE_HOME/models``) stays unsealed, so models
    trained before sealing existed keep loading there.
    """
    if location.startswith("s3://"):
        from consentune.artifacts.s3 import S3ModelStore

        return SealedModels(S3ModelStore(location, endpoint_url=s3_endpoint_url), key=key)
    store = FolderModelStore(Path(location.removeprefix("file://")))
    return SealedModels(store, key=key) if shared else store


__all__ = ["open_model_store"]
