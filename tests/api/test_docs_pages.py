"""/docs and /redoc load every asset from this server: the API reference works without internet."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from consentune.api import create_app
from consentune.service import Consentune


def test_docs_and_redoc_use_only_local_assets(sqlite_svc: Consentune) -> None:
    client = TestClient(create_app(sqlite_svc))
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        urls = re.findall(r'(?:src|href)="([^"]+)"', html.text) + re.findall(r"url: '([^']+)'", html.text)
        assert urls, page
        for url in urls:
            assert not url.startswith(("http://", "https://", "//")), f"{page} loads {url} from elsewhere"
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 100, url
    assert (
        client.get("/docs-assets/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
