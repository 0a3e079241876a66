"""A real server and a real headless Chromium for the dashboard's end-to-end tests.

One uvicorn process per test session serves a small demo catalogue from a
temporary data folder; Playwright drives Debian's Chromium
(``CONSENTUNE_CHROMIUM``, default ``/usr/bin/chromium``); no browser is
downloaded.  Without Chromium or Playwright these tests skip on a developer
machine and FAIL under CI=true.  Screenshots go to
``test-artifacts/screenshots/`` (gitignored; CI keeps them as artefacts).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from consentune.config import Settings
from consentune.demo.catalog import build_demo
from consentune.ledger.log import UsageRecord
from consentune.ports import ShieldRecord
from consentune.service import open_service
from consentune.types import ArtistId, Role

IN_CI = os.environ.get("CI") == "true"
CHROMIUM = os.environ.get("CONSENTUNE_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _unavailable(message: str) -> NoReturn:
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class DemoServer:
    url: str
    admin_key: str
    artist_keys: dict[str, str]  # artist name -> key
    artist_ids: dict[str, str]  # artist name -> id
    tracks: dict[str, list[str]]  # artist name -> track ids
    verifier_key: str
    block_subject: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/v1/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer within 60 s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    root = tmp_path_factory.mktemp("e2e")
    settings = Settings(home=root / "home", database_url=f"sqlite:///{root / 'consentune.db'}")
    svc = open_service(settings)
    keys = build_demo(svc, duration_s=2.0)
    artists = {a.name: a for a in svc.catalog.artists()}
    copier = artists["Tape Pirate"]  # the demo's re-uploader gets a key too, to see the claim from its side
    artist_keys = {**keys.artists, copier.name: svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(copier.id))[1]}
    tracks = {name: [t.id for t in svc.catalog.tracks(artist=a)] for name, a in artists.items()}
    subject = "address:198.51.100.7"
    svc.store.record_shield_decision(
        ShieldRecord(
            0, time.time(), subject, "block", 0.97,
            ({"name": "robotic-timing", "explanation": "inter-request gaps vary by under 5 ms"},),
        )
    )  # fmt: skip
    tricky = tracks["Lumen Drift"][0]
    svc.ledger.append(  # text that tests canonical JSON: escapes, non-ASCII, U+2028, astral characters
        [UsageRecord("service:tëst", "read-features", "organize", tricky, "allow", 'é ☃ 😀 \u2028 \x01 " \\ \t end')]
    )
    svc.ledger.checkpoint()
    verifier_key = svc.ledger.verifier_key
    svc.close()
    port = _free_port()
    env = {
        **os.environ,
        "CONSENTUNE_HOME": str(settings.home),
        "CONSENTUNE_DATABASE_URL": settings.database_url,
    }
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "consentune", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log)
        yield DemoServer(
            url=url,
            admin_key=keys.admin,
            artist_keys=artist_keys,
            artist_ids={name: a.id for name, a in artists.items()},
            tracks=tracks,
            verifier_key=verifier_key,
            block_subject=subject,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[dev]')")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium chromium-driver)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, server: DemoServer, key: str) -> None:
    page.goto(server.url)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
