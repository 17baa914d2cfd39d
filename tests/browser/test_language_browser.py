"""The language check (a DOM walk of the chrome, ``tests.support.language``) on the pages the
desk does not own but issue 21 asks to speak one language: the grid worker's phone app (``/m/``,
in mobile emulation) signed out and signed in (the health map: test_health_language_browser).
``/map`` and ``/desk`` are checked in their own modules (test_dispatch_browser,
test_desk_browser)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api import i18n
from tests.support.desk_browser import chromium, city, server
from tests.support.desk_city import PASSWORD
from tests.support.language import foreign_words

__all__ = ["chromium", "city", "server"]  # the fixtures, from tests.support.desk_browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True,
         "has_touch": True}


def phone(chromium: Any, base: str, lang: str) -> Any:
    context = chromium.new_context(**PHONE, locale=lang, timezone_id="Asia/Shanghai",
                                   geolocation={"longitude": 116.40, "latitude": 39.91,
                                                "accuracy": 10},
                                   permissions=["geolocation"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(f"{base}/m/?lang={lang}")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30_000)
    return page


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_phone_app_speaks_one_language(chromium, city: str, lang: str,  # type: ignore[no-untyped-def]
                                           artifacts: Path) -> None:
    page = phone(chromium, city, lang)
    page.wait_for_selector("#signin")
    seen = foreign_words(page, lang)  # the sign-in screen
    page.screenshot(path=str(artifacts / f"field_language_signin_{lang}.png"))
    page.fill("#username", "w-li")
    page.fill("#password", PASSWORD)
    page.click("#signin-button")
    page.wait_for_selector("[data-screen=where]", timeout=30_000)
    seen += foreign_words(page, lang)
    for tab in ("tasks", "mine"):
        if page.query_selector(f"#tab-{tab}"):
            page.click(f"#tab-{tab}")
            page.wait_for_selector(f"#view[data-screen={tab}]", timeout=15_000)
            seen += foreign_words(page, lang)
    page.screenshot(path=str(artifacts / f"field_language_{lang}.png"))
    assert sorted(set(seen)) == []
    assert not page.errors, page.errors



@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_counts_agree_with_their_words_in_the_browser(chromium, city: str,  # type: ignore[no-untyped-def]
                                                      lang: str) -> None:
    """The pages pick a message's plural variant as the server does ("1 day", "2 days")."""
    page = phone(chromium, city, lang)
    page.wait_for_selector("#signin")
    words = page.evaluate("""async () => {
      const app = document.querySelector('script[type=module][src]').src;
      const m = await import(new URL('../i18n.js', app).href);
      await m.loadMessages(['intel', 'time']);
      return [1, 2, '1', 0].map((n) => m.t('intel.similar_closed_in', { n }))
        .concat([m.t('time.limit_wd', { n: '1' }), m.t('time.days', { n: 'x' })]);
    }""")
    expected = [i18n.translate(lang, "intel.similar_closed_in", n=n) for n in (1, 2, "1", 0)]
    expected += [i18n.translate(lang, "time.limit_wd", n="1"),
                 i18n.translate(lang, "time.days", n="x")]
    assert words == expected
    if lang == "en":
        assert words[:2] == ["closed in 1 day", "closed in 2 days"]
        assert words[4] == "1 working day"
    assert not page.errors, page.errors
