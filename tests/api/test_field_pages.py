"""The phone app's page, manifest and service worker as served (the app itself runs in
tests/browser/test_field_browser.py)."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from api.routes.field import app_files


def test_page_is_a_shell_with_its_messages_and_no_inline_script(client: TestClient) -> None:
    r = client.get("/m/", headers={"Accept-Language": "en"})
    assert r.status_code == 200 and r.headers["content-language"] == "en"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    html = r.text
    # scripts are files; the only <script> blocks without src are JSON data
    for attrs in re.findall(r"<script([^>]*)>", html):
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs
    assert ' style="' not in html
    carried = json.loads(re.search(r'id="field-messages">(.*?)</script>', html, re.S)[1])
    assert carried["lang"] == "en" and carried["messages"]["field.tab_tasks"] == "Tasks"
    assert client.get("/m", follow_redirects=False).headers["location"] == "/m/"


def test_manifest_and_service_worker(client: TestClient) -> None:
    manifest = client.get("/m/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    body = manifest.json()
    assert body["display"] == "standalone" and body["start_url"] == body["scope"] == "/m/"
    worker = client.get("/m/sw.js")
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["service-worker-allowed"] == "/m/"
    shell = json.loads(re.search(r"const SHELL = (.*);", worker.text)[1])
    assert "/m/" in shell and "/static/vendor/leaflet/leaflet.js" in shell
    assert "/i18n/zh-CN.json?ns=common%2Cfield%2Cproblem%2Cintel" in shell
    assert {f"/static/{f}" for f in app_files()} <= set(shell)
    for url in shell:  # everything the worker caches on install exists
        assert client.get(url).status_code == 200, url
    version = re.search(r'const VERSION = "(\w+)"', worker.text)[1]
    assert client.get("/m/sw.js").text.count(version) == 1


def test_scripts_are_served_compressed(client: TestClient) -> None:
    plain = client.get("/static/vendor/leaflet/leaflet.js",
                       headers={"Accept-Encoding": "identity"})
    packed = client.get("/static/vendor/leaflet/leaflet.js",
                        headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(plain.content) / 2
    assert packed.content == plain.content  # decoded by the client
    again = client.get("/static/vendor/leaflet/leaflet.js", headers={
        "Accept-Encoding": "gzip", "If-None-Match": packed.headers["etag"]})
    assert again.status_code == 304
    png = client.get("/static/field/icons/icon-192.png", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in png.headers
