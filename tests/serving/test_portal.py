"""The portal's pages and assets over HTTP, without a browser: every page is HTML, every asset it names is served
from this server, and nothing in them points at another host (the browser tests check what Chromium requests)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from catalog import all_contracts
from infra.settings import Settings
from serving.app import create_app
from serving.portal import ASSETS

# The one absolute URL the assets may hold: SVG's namespace name, an identifier that is never fetched.
NAMESPACES = {"http://www.w3.org/2000/svg"}


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name in ("src", "srcset", "poster", "data") or (name == "href" and tag == "link")):
                self.refs.append(value)


def _refs(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    return parser.refs


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("CITYHUB_HOME", str(tmp_path / "home"))
    with TestClient(create_app(Settings())) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/", "/datasets/air_quality", "/datasets/mobility_trips"])
def test_pages_are_html_and_every_asset_they_name_is_served_here(client, path):
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in page.text and 'id="lang-toggle"' in page.text
    refs = _refs(page.text)
    assert {"/portal/portal.css", "/portal/i18n.js", "/portal/common.js"} <= set(refs)
    for ref in refs:
        assert ref.startswith("/portal/"), f"{path} names {ref}, not an asset of this server"
        asset = client.get(ref)
        assert asset.status_code == 200 and asset.content, ref
        kind = {".css": "text/css", ".js": "javascript", ".svg": "image/svg+xml"}[ref[ref.rindex(".") :]]
        assert kind in asset.headers["content-type"], ref


def test_assets_point_at_no_other_host():
    for path in sorted(ASSETS.iterdir()):
        text = path.read_text(encoding="utf-8")
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text)) - NAMESPACES
        assert not urls, f"{path.name} names {urls}"
        assert "@import" not in text and "url(" not in text.replace("url(#", ""), path.name


def test_dataset_pages_stay_clear_of_the_api(client):
    redirect = client.get("/datasets", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/"
    unknown = client.get("/datasets/no_such_dataset")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    # the API under /api/v1/datasets answers JSON as before
    listed = client.get("/api/v1/datasets")
    assert listed.headers["content-type"] == "application/json"
    assert [d["id"] for d in listed.json()["datasets"]] == [c.id for c in all_contracts()]
    assert client.get("/api/v1/datasets/no_such_dataset").json()["error"]["code"] == "unknown_dataset"
    # pages are not API operations: the OpenAPI document (and so the fuzzing) does not list them
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not [p for p in paths if p.startswith(("/datasets", "/portal"))]
