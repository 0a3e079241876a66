"""Where trained models live: a port, the folder default, and an integrity seal for shared stores.

A model is published under a name that sorts by training time
(``rec_<UTC stamp>_<random>``); every worker serves the newest it finds, so
a model trained on one machine reaches all of them without a restart.
:class:`SealedModels` prefixes each model with an HMAC-SHA256 under a
deployment secret: models are pickles, and a pickle that anyone with write
access to a shared folder or bucket could swap would run their code.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from pathlib import Path
from typing import Protocol

from consentune.errors import NotFound, VerificationFailed

MODEL_PREFIX = "rec_"
_SUFFIX = ".pkl"


class ModelStore(Protocol):
    def put(self, name: str, data: bytes) -> None:
        """Publish ``data`` as ``name`` (whole or not at all)."""

    def newest(self) -> str | None:
        """The greatest model name, or None when none was published."""

    def get(self, name: str) -> bytes:
        """The model's bytes; :class:`~consentune.errors.NotFound` if it is gone."""


class FolderModelStore:
    """``<dir>/<name>.pkl``, written atomically (temp file, rename): a local folder or one every machine mounts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, self.directory / f"{name}{_SUFFIX}")

    def newest(self) -> str | None:
        files = sorted(self.directory.glob(f"{MODEL_PREFIX}*{_SUFFIX}")) if self.directory.exists() else []
        return files[-1].stem if files else None

    def get(self, name: str) -> bytes:
        try:
            return (self.directory / f"{name}{_SUFFIX}").read_bytes()
        except FileNotFoundError:
            raise NotFound(f"model {name} is gone from {self.directory}", hint="train again") from None


class SealedModels:
    """Seals models with an HMAC before they reach ``inner`` and refuses any that does not verify."""

    def __init__(self, inner: ModelStore, *, key: bytes) -> None:
        self._inner = inner
        self._key = key

    def put(self, name: str, data: bytes) -> None:
        self._inner.put(name, self._seal(name, data) + data)

    def newest(self) -> str | None:
        return self._inner.newest()

    def get(self, name: str) -> bytes:
        sealed = self._inner.get(name)
        seal, data = sealed[:32], sealed[32:]
        if not hmac.compare_digest(seal, self._seal(name, data)):
            raise VerificationFailed(
                f"model {name} does not carry this deployment's seal",
                hint="someone else wrote it, or the machines use different secrets: check CONSENTUNE_SECRETS_DIR, "
                "remove the file and train again",
            )
        return data

    def _seal(self, name: str, data: bytes) -> bytes:
        return hmac.new(self._key, name.encode() + b"\0" + hashlib.sha256(data).digest(), hashlib.sha256).digest()


__all__ = ["MODEL_PREFIX", "FolderModelStore", "ModelStore", "SealedModels"]
