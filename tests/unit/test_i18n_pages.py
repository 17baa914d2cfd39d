"""The message catalogue and the page foundation: languages, negotiation, escaping, headers."""

from __future__ import annotations

import re
import string

import pytest
from babel import Locale
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api import errors, i18n, pages
from api.routes import i18n as i18n_routes
from api.security import headers as security_headers


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _plain(messages: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in messages.items() if i18n.PLURAL_MARK not in k}


def test_every_language_has_the_same_messages_and_placeholders() -> None:
    base = _plain(i18n.catalogue(i18n.DEFAULT_LANGUAGE))
    assert base, "the catalogue is empty"
    for lang in i18n.LANGUAGES:
        other = _plain(i18n.catalogue(lang))
        assert set(other) == set(base), (lang, set(other) ^ set(base))
        for key, text in base.items():
            assert _placeholders(other[key]) == _placeholders(text), (lang, key)
            assert other[key].strip(), (lang, key)


def test_plural_variants_belong_to_a_message_of_their_language() -> None:
    variants = 0
    for lang in i18n.LANGUAGES:
        messages = i18n.catalogue(lang)
        categories = Locale.parse(lang.replace("-", "_")).plural_form.tags | {"other"}
        for key, text in messages.items():
            if i18n.PLURAL_MARK not in key:
                continue
            variants += 1
            base, category = key.split(i18n.PLURAL_MARK, 1)
            assert base in messages, (lang, key)
            assert category in categories, (lang, key, categories)
            assert _placeholders(text) == _placeholders(messages[base]), (lang, key)
            assert {"n", "count"} & _placeholders(text), (lang, key, "no count to agree with")
    assert variants, "English needs singular forms"


@pytest.mark.parametrize(("lang", "n", "expected"), [
    ("en", 1, "closed in 1 day"), ("en", 3, "closed in 3 days"), ("en", 0, "closed in 0 days"),
    ("en", "1", "closed in 1 day"), ("en", 1.5, "closed in 1.5 days"),
    ("zh-CN", 1, None), ("zh-CN", 3, None),
])
def test_counts_agree_with_their_words(lang: str, n: object, expected: str | None) -> None:
    text = i18n.translate(lang, "intel.similar_closed_in", n=n)
    if expected is None:  # one form in Chinese
        assert text == i18n.catalogue(lang)["intel.similar_closed_in"].format(n=n)
    else:
        assert text == expected
    assert i18n.translate("en", "time.days", n="many") == "many days"  # not a count: the base


def test_chinese_catalogue_speaks_chinese() -> None:
    zh = i18n.catalogue("zh-CN")
    # Codes, units, names and list separators (common.sep_*: "、" / ", ") aside, every
    # Chinese message of the chrome carries Chinese.
    latin_only = [k for k, v in zh.items() if not re.search(r"[\u4e00-\u9fff]", v)
                  and not k.startswith(("common.language_", "common.sep_"))
                  and k != "common.product"]
    assert latin_only == []


@pytest.mark.parametrize(("header", "expected"), [
    (None, None), ("en-US,en;q=0.9", "en"), ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
    ("zh-Hans-CN", "zh-CN"), ("fr-FR, en;q=0.5", "en"), ("de", None),
    ("en;q=0.2, zh;q=0.9", "zh-CN"), ("*", None), ("en;q=x", None),
])
def test_accept_language(header: str | None, expected: str | None) -> None:
    assert i18n.from_accept_language(header) == expected


def test_query_beats_cookie_beats_header() -> None:
    assert i18n.negotiate({"lang": "en"}, {i18n.COOKIE: "zh-CN"}, "zh-CN") == "en"
    assert i18n.negotiate({}, {i18n.COOKIE: "en"}, "zh-CN") == "en"
    assert i18n.negotiate({"lang": "xx"}, {}, "en") == "en"
    assert i18n.negotiate({}, {}, None) == "zh-CN"


def test_translate_fills_placeholders_and_never_raises() -> None:
    assert i18n.translate("en", "map.title") == "One map · dispatch"
    assert i18n.translate("xx", "map.title") == i18n.translate("zh-CN", "map.title")
    assert i18n.translate("en", "no.such_key") == "no.such_key"


def _page_app() -> FastAPI:
    app = FastAPI()

    @app.get("/echo")
    def echo(request: Request, value: str = ""):  # type: ignore[no-untyped-def]
        env = pages.environment()
        return pages.HTMLResponse(env.from_string("<p>{{ v }}</p>").render(v=value))

    app.include_router(i18n_routes.router)
    errors.install(app)
    security_headers.install(app, ["https://tiles.example.org"])
    return app


def test_templates_escape_what_they_are_given() -> None:
    with TestClient(_page_app()) as client:
        r = client.get("/echo", params={"value": '"><script>alert(1)</script>'})
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text
    csp = r.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "https://tiles.example.org" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"


def test_messages_route_etag_and_errors() -> None:
    with TestClient(_page_app()) as client:
        r = client.get("/i18n/en.json", params={"ns": "common,map"})
        assert r.status_code == 200 and r.json()["lang"] == "en"
        assert set(k.split(".")[0] for k in r.json()["messages"]) == {"common", "map"}
        assert "content-security-policy" not in r.headers  # JSON, not a page
        again = client.get("/i18n/en.json", params={"ns": "common,map"},
                           headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        assert client.get("/i18n/zh.json").json()["lang"] == "zh-CN"
        assert client.get("/i18n/xx.json").status_code == 404
        assert client.get("/i18n/en.json", params={"ns": "nope"}).status_code == 422


def test_language_switch_sets_cookie_and_never_leaves_the_site() -> None:
    with TestClient(_page_app(), follow_redirects=False) as client:
        r = client.get("/i18n/switch", params={"lang": "en", "back": "/map?x=1"})
        assert r.status_code == 303 and r.headers["location"] == "/map?x=1"
        assert f"{i18n.COOKIE}=en" in r.headers["set-cookie"]
        for evil in ("//evil.example/", "https://evil.example/", "javascript:alert(1)"):
            r = client.get("/i18n/switch", params={"lang": "en", "back": evil})
            assert r.headers["location"] == "/"




