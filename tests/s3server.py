"""An S3-compatible server for tests: moto's standalone server, started by the test itself.

No MinIO (or other S3 server) binary ships in a package registry this
project can install from, so this is moto[server]: a real HTTP server
speaking the S3 REST protocol, driven by the real boto3 client.  It does not
prove behaviour under a real store's consistency, latency, multipart limits
or auth (docs/operations.md).  ``CONSENTUNE_TEST_S3_ENDPOINT`` points the
tests at another server (e.g. MinIO) instead.  Without the server these
tests skip on a developer machine and FAIL under CI=true.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

IN_CI = os.environ.get("CI") == "true"


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    given = os.environ.get("CONSENTUNE_TEST_S3_ENDPOINT")
    if given:
        yield given
        return
    try:
        import moto.server  # noqa: F401
    except ImportError:
        _unavailable("moto[server] is not installed (pip install -e '.[dev]')")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    else:
        process.kill()
        _unavailable("the moto S3 server did not start within 30 s")
    if process.poll() is not None:
        _unavailable(f"the moto S3 server exited with {process.returncode}")
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket (its name) on the test server; AWS_* credentials set for this test."""
    for name, value in (("AWS_ACCESS_KEY_ID", "consentune"), ("AWS_SECRET_ACCESS_KEY", "consentune-secret"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
        monkeypatch.setenv(name, os.environ.get(f"CONSENTUNE_TEST_{name}", value))
    bucket = f"ct-{uuid.uuid4().hex[:16]}"
    client(s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


def client(endpoint: str) -> Any:
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=endpoint)
