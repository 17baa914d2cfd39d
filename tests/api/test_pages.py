"""Pages and problems in the caller's language on the real app: the map page, problem titles."""

from __future__ import annotations

import re


def test_map_page_in_each_language(client) -> None:  # type: ignore[no-untyped-def]
    zh = client.get("/map")
    assert zh.status_code == 200 and '<html lang="zh-CN"' in zh.text
    assert "一张图" in zh.text and "Sign in" not in zh.text
    assert "script-src 'self'" in zh.headers["content-security-policy"]
    en = client.get("/map", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en"' in en.text and "Sign in" in en.text
    assert client.get("/map?lang=en").headers["content-language"] == "en"
    # inline script is never part of a page
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)", zh.text)


def test_problem_titles_follow_the_callers_language(client) -> None:  # type: ignore[no-untyped-def]
    zh = client.get("/cases/999999999", headers={"X-Role": "dispatcher", "X-Actor": "d"})
    en = client.get("/cases/999999999", headers={"X-Role": "dispatcher", "X-Actor": "d",
                                                 "Accept-Language": "en"})
    assert zh.status_code == en.status_code == 404
    assert zh.json()["title"] == "未找到" and en.json()["title"] == "Not found"
    assert zh.headers["x-content-type-options"] == "nosniff"

