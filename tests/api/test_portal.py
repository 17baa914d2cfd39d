"""The root serves two audiences: OGC API clients get the JSON landing document (by default,
with Accept: application/json, with ?f=json), browsers get the portal page (门户: Accept
preferring text/html, or ?f=html); anything else for f is a 400 that names the parameter."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize(("accept", "query", "html"), [
    (None, "", False), ("*/*", "", False), ("application/json", "", False),
    ("application/json, text/html;q=0.5", "", False), (BROWSER, "", True),
    ("text/html", "", True), (BROWSER, "?f=json", False), ("application/json", "?f=html", True),
    ("text/html;q=abc", "", True)])
def test_the_root_answers_json_to_clients_and_the_portal_to_browsers(
        client: TestClient, accept: str | None, query: str, html: bool) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    response = client.get(f"/{query}", headers=headers)
    assert response.status_code == 200
    assert "Accept" in response.headers.get("vary", "") or not html
    if html:
        assert response.headers["content-type"].startswith("text/html")
        assert 'href="/map"' in response.text and 'href="/m/"' in response.text
        assert "<script>" not in response.text
    else:
        body = response.json()
        assert body["title"] == "gridcore"
        rels = {(x["rel"], x["href"].split("/", 3)[-1]) for x in body["links"]}
        assert ("alternate", "?f=html") in rels and ("conformance", "conformance") in rels


def test_the_portal_speaks_the_callers_language(client: TestClient) -> None:
    zh = client.get("/", headers={"Accept": BROWSER, "Accept-Language": "zh-CN,zh;q=0.9"})
    en = client.get("/?lang=en", headers={"Accept": BROWSER})
    assert "指挥调度" in zh.text and "网格员" in zh.text
    assert zh.headers["content-language"] == "zh-CN"
    assert "Department Desk" in en.text and "网格员" not in en.text


def test_an_unknown_format_is_a_400_naming_f(client: TestClient) -> None:
    response = client.get("/?f=xml")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "f" in response.text
