"""Every dashboard page at 1280, 390 and 360 px: WCAG 2.2 AA by axe-core, no horizontal scroll, no JS errors.

axe-core comes from the npm registry (``.ci/run`` installs it into ``.cache/npm``;
``CONSENTUNE_AXE_JS`` points elsewhere).  Without it these tests skip locally and
FAIL under CI=true.  Screenshots of every page at both widths go to
``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import IN_CI, SCREENSHOTS, DemoServer, sign_in

AXE = Path(
    os.environ.get(
        "CONSENTUNE_AXE_JS",
        Path(__file__).resolve().parents[2] / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js",
    )
)
WIDTHS = {"laptop": 1280, "phone": 390, "small-phone": 360}
ARTIST = "The Night Sequencers"


def _pages(server: DemoServer) -> dict[str, tuple[str, Callable[[], str]]]:
    """name -> (who signs in, the page's URL)."""
    artist_id = server.artist_ids[ARTIST]
    track = server.tracks[ARTIST][0]
    return {
        "sign-in": ("nobody", lambda: f"{server.url}/dashboard/sign-in"),
        "artist-overview": (ARTIST, lambda: f"{server.url}/dashboard/artists/{artist_id}"),
        "track": (ARTIST, lambda: f"{server.url}/dashboard/tracks/{track}"),
        "reach": (ARTIST, lambda: f"{server.url}/dashboard/artists/{artist_id}/reach"),
        "copier-overview": (
            "Tape Pirate",
            lambda: f"{server.url}/dashboard/artists/{server.artist_ids['Tape Pirate']}",
        ),
        "operator": ("admin", lambda: f"{server.url}/dashboard/operator"),
        "error": (ARTIST, lambda: f"{server.url}/dashboard/tracks/trk_doesnotexist"),
        "api-docs": ("nobody", lambda: f"{server.url}/docs"),
    }


@pytest.mark.parametrize("width", sorted(WIDTHS))
@pytest.mark.parametrize(
    "name",
    ["sign-in", "artist-overview", "track", "reach", "copier-overview", "operator", "error", "api-docs"],
)
def test_page_is_accessible_fits_the_screen_and_throws_nothing(
    browser: Any, demo_server: DemoServer, name: str, width: str
) -> None:
    if not AXE.is_file():
        message = f"axe-core not found at {AXE} (npm install --prefix .cache/npm axe-core@4)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    who, url = _pages(demo_server)[name]
    # bypass_csp only lets the test inject axe-core; the pages keep their own CSP otherwise
    context = browser.new_context(viewport={"width": WIDTHS[width], "height": 900}, bypass_csp=True)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        if who == "admin":
            sign_in(page, demo_server, demo_server.admin_key)
        elif who != "nobody":
            sign_in(page, demo_server, demo_server.artist_keys[who])
        page.goto(url())
        page.wait_for_load_state("networkidle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{WIDTHS[width]}.png"), full_page=True)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow} px at {WIDTHS[width]} px"
        if name != "api-docs":  # Swagger UI's own markup is not ours to fix; it must load and fit
            page.add_script_tag(path=str(AXE))
            result = page.evaluate(
                """async () => (await axe.run(document, {runOnly: {type: 'tag',
                     values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})).violations
                     .map(v => `${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')}`)"""
            )
            assert result == [], "\n".join(result)
        else:
            page.locator(".swagger-ui .info").wait_for(timeout=20_000)
        assert errors == [], errors
    finally:
        context.close()
