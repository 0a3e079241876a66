"""The batch-jobs pages in a real browser: reached from the menu, labelled, readable, refused to artists."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import DemoServer, screenshot, sign_in
from tests.e2e.test_dashboard import LOW_CONTRAST, UNLABELLED


def test_operators_reach_the_jobs_page_from_the_menu(page: Any, demo_server: DemoServer) -> None:
    sign_in(page, demo_server, demo_server.admin_key)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Batch jobs").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Batch jobs"
    body = page.locator("main").inner_text()
    assert "asks the consent gate before it reads anything" in body
    assert page.locator("#jobs-table tbody tr").count() >= 1 or "No batch jobs yet" in body
    assert page.evaluate(UNLABELLED) == [] and page.evaluate(LOW_CONTRAST) == []
    screenshot(page, "jobs")


def test_artists_are_refused_the_jobs_page(page: Any, demo_server: DemoServer) -> None:
    sign_in(page, demo_server, next(iter(demo_server.artist_keys.values())))
    response = page.goto(f"{demo_server.url}/dashboard/operator/jobs")
    assert response is not None and response.status == 403
