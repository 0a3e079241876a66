"""Jobs in the operator console: list, detail, cancel and resume with CSRF, for operators only."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from consentune.api import create_app
from consentune.service import Consentune
from consentune.types import ArtistId, Role, TrackId
from tests.jobs.test_play_jobs import _plays_csv

CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ACTOR = "service:console-test"


def _sign_in(client: TestClient, key: str) -> str:
    form = LOGIN_TOKEN.search(client.get("/dashboard/sign-in").text)
    assert form is not None
    landing = client.post("/dashboard/sign-in", data={"api_key": key, "csrf_token": form.group(1)})
    found = CSRF_META.search(landing.text)
    assert landing.status_code == 200 and found is not None
    return found.group(1)


def _visible(html: str) -> str:
    """The page's words, without tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture
def client(svc: Consentune) -> TestClient:
    return TestClient(create_app(svc), raise_server_exceptions=True)


def test_operators_see_jobs_in_plain_words_and_cancel_with_csrf(
    svc: Consentune, catalogue: dict[str, list[TrackId]], client: TestClient, tmp_path: Path
) -> None:
    path = tmp_path / "plays.csv"
    _plays_csv(path, catalogue["order"], rows=400, seed=1)
    job = svc.jobs.create_import(path, actor=ACTOR, chunk_bytes=4096)
    training = svc.jobs.create("train-recommend", catalogue["order"], actor="admin:key_x", batch=4)
    artist_key = svc.keys.create(role=Role.ARTIST, artist_id=ArtistId(svc.catalog.artist("Ada").id))[1]
    _sign_in(client, artist_key)
    assert client.get("/dashboard/operator/jobs").status_code == 403
    assert client.get(f"/dashboard/operator/jobs/{job.id}").status_code == 403

    operator = TestClient(client.app, raise_server_exceptions=True)
    csrf = _sign_in(operator, svc.keys.create(role=Role.ADMIN)[1])
    listing = _visible(operator.get("/dashboard/operator/jobs").text)
    assert "Importing a file of plays" in listing and "Training the recommendation model" in listing
    assert f"0 of {job.tasks} parts" in listing and "0 of 2 parts" in listing
    assert "Waiting to start" in listing and "the console-test service" in listing and "an operator" in listing
    detail = operator.get(f"/dashboard/operator/jobs/{training.id}").text
    assert "Tracks left out because the artist said no" in _visible(detail)
    assert f"/operator/jobs/{training.id}/cancel" in detail and f"/operator/jobs/{training.id}/resume" in detail

    url = f"/dashboard/operator/jobs/{training.id}/cancel"
    assert operator.post(url, data={"csrf_token": "forged"}).status_code == 403
    cross = operator.post(url, data={"csrf_token": csrf}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403 and svc.jobs.get(training.id).status == "queued"
    done = operator.post(url, data={"csrf_token": csrf})
    assert done.status_code == 200 and svc.jobs.get(training.id).status == "cancelled"
    page = _visible(done.text)
    assert "Cancelled. Parts already running finish" in page and "Resume from where it stopped" not in page
    again = operator.post(url, data={"csrf_token": csrf})
    assert again.status_code == 409 and "already cancelled" in again.text
    assert operator.get("/dashboard/operator/jobs/999").status_code == 404


def test_the_resume_button_starts_a_driver_that_finishes_the_job(
    svc: Consentune, catalogue: dict[str, list[TrackId]], client: TestClient, tmp_path: Path
) -> None:
    path = tmp_path / "plays.csv"
    good = _plays_csv(path, catalogue["order"], rows=300, seed=2)
    job = svc.jobs.create_import(path, actor=ACTOR, chunk_bytes=4096)
    csrf = _sign_in(client, svc.keys.create(role=Role.ADMIN)[1])
    url = f"/dashboard/operator/jobs/{job.id}/resume"
    assert client.post(url, data={"csrf_token": "forged"}).status_code == 403
    started = client.post(url, data={"csrf_token": csrf})
    assert started.status_code == 200 and "Resuming in the background" in started.text
    deadline = time.monotonic() + 180
    while svc.jobs.get(job.id).status != "done":
        assert time.monotonic() < deadline, f"the background driver did not finish: {svc.jobs.get(job.id)}"
        time.sleep(0.2)
    with svc.store.engine.connect() as conn:
        assert conn.execute(text("select count(*) from plays")).scalar() == len(good)
    finished = _visible(client.get(f"/dashboard/operator/jobs/{job.id}").text)
    assert "Finished" in finished and f"Plays imported {len(good)}" in finished
    assert client.post(url, data={"csrf_token": csrf}).status_code == 409  # nothing left to resume
