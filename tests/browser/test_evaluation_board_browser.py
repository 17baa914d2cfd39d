"""The evaluation board (考评中心, ``/evaluation/board``) in headless Chromium on the planted
month: the departments' ranking in the caller's language on a desk and on a phone (no sideways
scrolling of the page: the wide table scrolls in its own box), a party explained down to its
cases (a case opens on the map), another kind chosen, and in production the page asks for a
sign-in and the period's briefing comes as a PDF."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from gridcore.settings import Settings
from layers.security.users import add_user
from tests.support.browser import chromium_browser
from tests.support.evaluation_planting import PERIOD, plant_month
from tests.support.language import foreign_words
from tests.support.thread_server import live_server

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True,
         "device_scale_factor": 2}
DESK = {"viewport": {"width": 1280, "height": 800}}
READY = "() => document.body.dataset.ready === '1'"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_ranking_a_party_down_to_its_cases_and_another_kind(
        db: Engine, lang: str, artifacts: Path) -> None:
    plant_month(db)
    with live_server(db) as url, chromium_browser() as browser:
        errors: list[str] = []
        for name, device in (("desk", DESK), ("phone", PHONE)):
            page = browser.new_context(locale=lang, **device).new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/evaluation/board?period={PERIOD}&lang={lang}")
            page.wait_for_function(READY)
            rows = page.locator("#ranking tbody tr")
            assert rows.count() >= 2
            assert page.locator("#ranking thead th").count() >= 6
            first = rows.first
            assert first.locator(".rank").inner_text() == "1"
            width = device["viewport"]["width"]  # type: ignore[index]
            assert page.evaluate("document.scrollingElement.scrollWidth") <= width
            seen = foreign_words(page, lang)
            assert seen == [], '; '.join(seen)
            page.screenshot(path=str(artifacts / f"evaluation_board_{name}_{lang}.png"))
            first.click()
            page.wait_for_function("() => document.getElementById('detail').dataset.ready === '1'")
            detail = page.locator("#detail")
            assert detail.is_visible()
            assert page.locator("#detail .terms tr").count() >= 5  # a head and the terms
            assert page.locator("#detail .aggregates dt").count() >= 5
            seen = foreign_words(page, lang)
            assert seen == [], '; '.join(seen)
            page.screenshot(path=str(artifacts / f"evaluation_board_detail_{name}_{lang}.png"))
            links = page.locator("#detail .cases a")
            assert links.count() >= 1
            # a case is named by its number, as the map, the desk and the phone name it
            # (it read "#2796" beside every other page's "C00002796")
            case_id = links.first.get_attribute("href").rpartition("=")[2]
            assert links.first.inner_text() == f"C{int(case_id):08d}"
            page.keyboard.press("Escape")
            assert not detail.is_visible()
            if name == "desk":
                links_href = links.first.get_attribute("href")
                assert links_href == f"/map#case={case_id}"
                page.goto(f"{url}{links_href}")
                page.wait_for_function("() => document.body.dataset.ready === '1'",
                                       timeout=30_000)
                assert page.evaluate("window.gridcore.state.selectedCase") == int(case_id)
                assert page.locator("#drawer").is_visible()
                page.goto(f"{url}/evaluation/board?period={PERIOD}&lang={lang}")
                page.wait_for_function(READY)
                page.select_option("select[name=kind]", "area")
                page.wait_for_url("**kind=area**")
                page.wait_for_function(READY)
                assert page.locator("select[name=level]").input_value() == "street"
                assert page.locator("#ranking tbody tr").count() >= 1
                # grid workers: their patrol coverage and grid area in km², not bare m²
                page.select_option("select[name=kind]", "worker")
                page.wait_for_url("**kind=worker**")
                page.wait_for_function(READY)
                page.locator("#ranking tbody tr").first.click()
                page.wait_for_function(
                    "() => document.getElementById('detail').dataset.ready === '1'")
                areas = page.locator("#detail .aggregates dt").all_inner_texts()
                unit = "平方公里" if lang == "zh-CN" else "km²"
                assert sum(unit in a for a in areas) == 2, areas
        assert errors == []


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_note_on_imported_cases_comes_before_the_ranking(
        db: Engine, tmp_path: Path, lang: str, artifacts: Path) -> None:
    """A period holding cases imported from a legacy system: the note that their steps before
    the import are not counted is read before the ranking (a notice above the table, not a
    line under it), and in a party's explanation before its terms."""
    from tests.db.test_import_cases import load
    from tests.support.cases import plant

    plant(db)
    load(db, tmp_path)  # four cases of 2024-03 from "old311"
    before = "(a, b) => !!(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING)"
    with live_server(db) as url, chromium_browser() as browser:
        for name, device in (("desk", DESK), ("phone", PHONE)):
            page = browser.new_context(locale=lang, **device).new_page()
            page.goto(f"{url}/evaluation/board?period=2024-03&lang={lang}")
            page.wait_for_function(READY)
            note = page.locator("#imported-note")
            assert note.is_visible() and "old311" in note.inner_text()
            assert page.locator("#ranking tbody tr").count() >= 1
            assert "old311" not in page.locator("#ranking-note").inner_text()  # said once
            table = page.locator("#ranking")
            assert note.evaluate(before, table.element_handle())
            assert note.bounding_box()["y"] < table.bounding_box()["y"]  # type: ignore[index]
            page.screenshot(path=str(artifacts / f"evaluation_imported_{name}_{lang}.png"))
            page.locator("#ranking tbody tr").first.click()
            page.wait_for_function("() => document.getElementById('detail').dataset.ready === '1'")
            notice = page.locator("#detail .imported")
            assert notice.count() == 1 and "old311" in notice.inner_text()
            assert notice.evaluate(before, page.locator("#detail .terms").element_handle())
            page.screenshot(path=str(artifacts / f"evaluation_imported_detail_{name}_{lang}.png"))


def test_production_asks_for_a_sign_in_and_gives_the_briefing_as_pdf(
        db: Engine, tmp_path: Path, artifacts: Path) -> None:
    plant_month(db)
    add_user(db, "chief", "a-long-enough-password", "manager")
    tree = Settings()
    tree.security = tree.security.model_copy(update={"env": "production"})
    with live_server(db, tree) as url, chromium_browser() as browser:
        page = browser.new_context(locale="zh-CN", accept_downloads=True, **DESK).new_page()
        page.goto(f"{url}/evaluation/board?period={PERIOD}")
        page.wait_for_function(READY)
        assert page.locator("#signin").is_visible()
        assert page.locator("#ranking tbody tr").count() == 0
        page.fill("#username", "chief")
        page.fill("#password", "wrong-password-here")
        page.click("#signin button[type=submit]")
        page.wait_for_function("() => document.getElementById('signin-error').textContent")
        assert foreign_words(page, "zh-CN") == []  # the refusal in Chinese
        page.fill("#password", "a-long-enough-password")
        page.click("#signin button[type=submit]")
        page.wait_for_selector("#ranking tbody tr")
        assert not page.locator("#signin").is_visible()
        with page.expect_download(timeout=120_000) as download:
            page.click("#briefing")
        path = tmp_path / "briefing.pdf"
        download.value.save_as(path)
        assert path.read_bytes()[:5] == b"%PDF-"
        assert download.value.suggested_filename == f"briefing-{PERIOD}.pdf"
