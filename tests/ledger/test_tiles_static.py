"""A third party verifies the published log from a plain static file server.

The verifier below is written from the C2SP specs (tlog-tiles, tlog-checkpoint,
signed-note) and RFC 9162 alone: it uses hashlib, urllib and the Ed25519 of
``cryptography``, and imports nothing from Consentune.  The server is Python's
``http.server`` serving the tiles folder as plain files.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.ledger.log import UsageRecord
from consentune.service import Consentune
from consentune.types import RECOMMEND

# -- the independent verifier ------------------------------------------------------------


class Fetcher:
    """GETs tiles below a URL prefix, caching them (tiles are immutable)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.cache: dict[str, bytes] = {}

    def get(self, path: str) -> bytes:
        if path not in self.cache:
            with urllib.request.urlopen(f"{self.prefix}/{path}", timeout=10) as response:
                self.cache[path] = response.read()
        return self.cache[path]


def open_note(note: bytes, verifier_key: str) -> tuple[str, int, bytes]:
    """Check a signed note against ``name+hexid+base64(0x01||key)``; return origin, size, root."""
    name, key_id_hex, key_b64 = verifier_key.split("+", 2)
    raw = base64.b64decode(key_b64, validate=True)
    assert raw[0] == 1 and len(raw) == 33, "only Ed25519 keys"
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    assert key_id.hex() == key_id_hex
    text = note.decode("utf-8")
    split = text.rindex("\n\n")
    body, signatures = text[: split + 1], text[split + 2 :].splitlines()
    verified = False
    for line in signatures:
        assert line.startswith("\u2014 ")
        signer, sig_b64 = line[2:].split(" ")
        blob = base64.b64decode(sig_b64, validate=True)
        if signer == name and blob[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(blob[4:], body.encode())  # raises if forged
            verified = True
    assert verified, "no signature by the trusted key"
    origin, size, root = body.split("\n")[:3]
    return origin, int(size), base64.b64decode(root, validate=True)


def index_path(n: int) -> str:
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class TileTree:
    """RFC 9162 Merkle Tree Hashes of a tree of ``size`` leaves, read from tlog-tiles."""

    def __init__(self, fetch: Fetcher, size: int) -> None:
        self.fetch, self.size = fetch, size

    def _tile(self, level: int, index: int) -> bytes:
        width = min(256, (self.size >> (8 * level)) - index * 256)
        suffix = "" if width == 256 else f".p/{width}"
        data = self.fetch.get(f"tile/{level}/{index_path(index)}{suffix}")
        assert len(data) == 32 * width
        return data

    def perfect(self, height: int, index: int) -> bytes:
        """Hash of the perfect subtree of ``2**height`` leaves starting at leaf ``index * 2**height``."""
        level, rest = divmod(height, 8)
        first = index << rest  # position among the level's stored hashes
        tile = self._tile(level, first // 256)
        hashes = [tile[32 * i : 32 * i + 32] for i in range(first % 256, first % 256 + (1 << rest))]
        while len(hashes) > 1:
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        return hashes[0]

    def mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.perfect(n.bit_length() - 1, start // n)
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self.mth(start, start + k), self.mth(start + k, end))

    def inclusion_path(self, m: int, start: int, end: int) -> list[bytes]:
        if end - start == 1:
            return []
        k = 1 << ((end - start - 1).bit_length() - 1)
        if m - start < k:
            return [*self.inclusion_path(m, start, start + k), self.mth(start + k, end)]
        return [*self.inclusion_path(m, start + k, end), self.mth(start, start + k)]

    def entry(self, m: int) -> bytes:
        index = m // 256
        width = min(256, self.size - index * 256)
        suffix = "" if width == 256 else f".p/{width}"
        bundle, entries, at = self.fetch.get(f"tile/entries/{index_path(index)}{suffix}"), [], 0
        while at < len(bundle):
            length = int.from_bytes(bundle[at : at + 2], "big")
            entries.append(bundle[at + 2 : at + 2 + length])
            at += 2 + length
        assert len(entries) == width
        return entries[m % 256]


def verify_inclusion(leaf: bytes, m: int, n: int, proof: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if m >= n:
        return False
    fn, sn, r = m, n - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


# -- the tests -------------------------------------------------------------------------------


@pytest.fixture
def static_server(svc: Consentune) -> Iterator[str]:
    folder = svc.settings.tiles_dir
    folder.mkdir(parents=True, exist_ok=True)
    handler = partial(_QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _grow(svc: Consentune, n: int, tag: str) -> None:
    for start in range(0, n, 97):
        count = min(97, n - start)
        svc.ledger.append(
            [
                UsageRecord("service:t", "read-audio", RECOMMEND, f"trk_{(start + i) % 11}", "allow", f"{tag}{i}", 1)
                for i in range(count)
            ]
        )
    svc.ledger.integrate()


def _verify_everything(fetch: Fetcher, key: str, samples: list[int]) -> int:
    origin, size, root = open_note(fetch.get("checkpoint"), key)
    assert origin == "consentune.local/ledger"
    tree = TileTree(fetch, size)
    assert tree.mth(0, size) == root  # the tiles reproduce the signed root
    for m in samples:
        if m < size:
            leaf = hashlib.sha256(b"\x00" + tree.entry(m)).digest()
            assert leaf == tree.perfect(0, m)  # the bundle's entry is the tile's leaf
            assert verify_inclusion(leaf, m, size, tree.inclusion_path(m, 0, size), root)
            assert not verify_inclusion(
                hashlib.sha256(b"\x00x").digest(), m, size, tree.inclusion_path(m, 0, size), root
            )
    return size


def test_a_third_party_verifies_inclusion_from_a_static_file_server(svc: Consentune, static_server: str) -> None:
    key = svc.ledger.verifier_key
    _grow(svc, 600, "a")  # two full level-0 tiles, a partial one, a partial level-1 tile
    size = _verify_everything(Fetcher(static_server), key, [0, 1, 255, 256, 511, 512, 599, 600])
    assert size == svc.ledger.size >= 600
    _grow(svc, 66_000 - size, "b")  # a full level-1 tile (65,536 leaves) and a level-2 partial
    fresh = Fetcher(static_server)
    assert _verify_everything(fresh, key, [3, 599, 65_535, 65_536, 65_999]) == 66_000
    assert "tile/2/000.p/1" in fresh.cache


def test_a_forged_checkpoint_or_tile_fails_the_independent_verifier(svc: Consentune, static_server: str) -> None:
    _grow(svc, 300, "c")
    folder: Path = svc.settings.tiles_dir
    note = (folder / "checkpoint").read_bytes()
    size = svc.ledger.size
    forged = note.replace(f"\n{size}\n".encode(), f"\n{size - 1}\n".encode())
    assert forged != note
    (folder / "checkpoint").write_bytes(forged)
    with pytest.raises(InvalidSignature):
        open_note(Fetcher(static_server).get("checkpoint"), svc.ledger.verifier_key)
    (folder / "checkpoint").write_bytes(note)
    tile = folder / "tile" / "0" / "000"
    data = bytearray(tile.read_bytes())
    data[40] ^= 1
    tile.write_bytes(bytes(data))
    fetch = Fetcher(static_server)
    _, size, root = open_note(fetch.get("checkpoint"), svc.ledger.verifier_key)
    tree = TileTree(fetch, size)
    leaf = hashlib.sha256(b"\x00" + tree.entry(1)).digest()
    assert tree.perfect(0, 1) != leaf  # the damaged hash no longer matches its entry
    assert not verify_inclusion(tree.perfect(0, 1), 1, size, tree.inclusion_path(1, 0, size), root)
    assert not verify_inclusion(leaf, 0, size, tree.inclusion_path(0, 0, size), root)  # its sibling's path breaks
    assert not svc.ledger.audit().ok  # the operator's own audit sees the damaged tile too


def test_the_api_serves_the_same_tiles_with_caching_headers(svc: Consentune) -> None:
    _grow(svc, 300, "d")
    with TestClient(create_app(svc)) as client:
        checkpoint = client.get("/v1/ledger/tiles/checkpoint")
        assert checkpoint.status_code == 200
        assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
        assert "max-age=5" in checkpoint.headers["cache-control"]
        _, size, _ = open_note(checkpoint.content, svc.ledger.verifier_key)
        full = client.get("/v1/ledger/tiles/tile/0/000")
        assert full.status_code == 200 and len(full.content) == 8192
        assert "immutable" in full.headers["cache-control"]
        assert full.content == (svc.settings.tiles_dir / "tile/0/000").read_bytes()
        partial_width = size - 256
        bundle = client.get(f"/v1/ledger/tiles/tile/entries/001.p/{partial_width}")
        assert bundle.status_code == 200 and bundle.headers["content-type"] == "application/octet-stream"
        assert client.get("/v1/ledger/tiles/tile/0/1").status_code == 400  # not the canonical x/3-digit form
        assert client.get("/v1/ledger/tiles/tile/0/x001/000").status_code == 404
        assert client.get("/v1/ledger/tiles/tile/..%2F..%2Fconsentune.db").status_code in (400, 404)
