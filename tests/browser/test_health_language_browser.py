"""The language check (``tests.support.language``) on the health map (``/health/map``, issue
18's template): its chrome and a grid's tooltip (城管指数 …) in Chinese, and in English."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.browser import chromium_browser
from tests.support.health_planting import WINDOW, plant_city, plant_history
from tests.support.language import foreign_words
from tests.support.thread_server import live_server


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_health_map_speaks_one_language(db: Engine, lang: str, artifacts: Path) -> None:
    plant_city(db)
    plant_history(db)
    with live_server(db) as url, chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale=lang)
        page.goto(f"{url}/health/map?window={WINDOW}&index=total&lang={lang}")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        seen = foreign_words(page, lang)
        page.locator(".leaflet-interactive").first.hover()
        page.wait_for_selector(".health-tooltip")
        seen += foreign_words(page, lang)
        page.screenshot(path=str(artifacts / f"health_map_language_{lang}.png"))
    assert sorted(set(seen)) == []


def test_the_english_legend_begins_every_entry_with_a_capital(db: Engine, artifacts: Path) -> None:
    """Each entry of the legend stands alone: "No data" like the other labels (the catalogue's
    "no data" stays lower case for sentences; the page writes it as a label)."""
    plant_city(db)
    plant_history(db)
    with live_server(db) as url, chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en")
        page.goto(f"{url}/health/map?window={WINDOW}&index=total&lang=en")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        entries = page.locator("#legend-rows .legend-row").all_inner_texts()
        page.screenshot(path=str(artifacts / "health_map_legend_en.png"))
    assert any(entry.startswith("No data") for entry in entries), entries
    assert all(not entry[:1].islower() for entry in entries), entries


def test_the_english_explanation_writes_its_labels_with_a_capital(db: Engine,
                                                                  artifacts: Path) -> None:
    """A grid's explanation in English read "close ×", "total score 98.9", "indices",
    "indicator · value · previous · points lost · records behind it", "city management",
    "cases per km²", "no points lost" — beside the evaluation board's "Close ×", "Indicator",
    "Value" and the same panel's own "Index"."""
    plant_city(db)
    plant_history(db)
    with live_server(db) as url, chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="en")
        page.goto(f"{url}/health/map?window={WINDOW}&index=total&lang=en")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        page.locator(".leaflet-interactive").first.click()
        page.wait_for_function("() => document.getElementById('explain').dataset.ready === '1'")
        labels = page.evaluate("""() => [
          '#explain-close', '#explain-body .explain-total b', '#explain-body .explain-driver',
          '#explain-body h3', '#explain-body th', '#explain-body td:last-child:not(:has(a))',
          '#explain-body .explain-links a', '#explain-body .explain-all > span']
          .flatMap((s) => [...document.querySelectorAll(s)]).map((e) => e.innerText.trim())
          .filter((x) => x)""")
        page.screenshot(path=str(artifacts / "health_map_explain_labels_en.png"))
    assert len(labels) > 20, labels
    lower = [x for x in labels if x[:1].islower()]
    assert lower == [], lower


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_explanation_writes_rates_as_percentages(db: Engine, lang: str,
                                                     artifacts: Path) -> None:
    """A grid's terms read "closure rate 0.750 (previous 1.000)" and "overdue open cases
    3.000": a manager reads rates as percentages and counts whole, as the evaluation board
    writes them."""
    plant_city(db)
    plant_history(db)
    with live_server(db) as url, chromium_browser() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800}, locale=lang)
        page.goto(f"{url}/health/map?window={WINDOW}&index=total&lang={lang}")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        page.locator(".leaflet-interactive").first.click()
        page.wait_for_function("() => document.getElementById('explain').dataset.ready === '1'")
        rows = page.eval_on_selector_all(
            "#explain-body .explain-terms tr",
            "rs => rs.map((r) => [...r.cells].map((c) => c.innerText.trim()))")
        page.screenshot(path=str(artifacts / f"health_map_explain_values_{lang}.png"))
    values = {r[0].lower(): r[1:3] for r in rows[1:]}
    rate, overdue = (("结案率", "超期未结案件") if lang == "zh-CN"
                     else ("closure rate", "overdue open cases"))
    assert values[rate] == ["75.0 %", "100.0 %"], values
    assert values[overdue] == ["3", "0"], values


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_explanation_fits_a_phone(db: Engine, lang: str, artifacts: Path) -> None:
    """On a 390 px phone the explanation ran past the screen's right edge (540 px or the
    screen's width, plus its padding): its close button was cut, and "100.0 %" broke over two
    lines in the narrow columns."""
    plant_city(db)
    plant_history(db)
    with live_server(db) as url, chromium_browser() as browser:
        page = browser.new_context(viewport={"width": 390, "height": 844}, locale=lang,
                                   is_mobile=True, has_touch=True).new_page()
        page.goto(f"{url}/health/map?window={WINDOW}&index=total&lang={lang}")
        page.wait_for_function("() => document.body.dataset.ready === '1'")
        page.locator(".leaflet-interactive").first.click()
        page.wait_for_function("() => document.getElementById('explain').dataset.ready === '1'")
        panel = page.locator("#explain").bounding_box()
        close = page.locator("#explain-close").bounding_box()
        page.screenshot(path=str(artifacts / f"health_map_explain_phone_{lang}.png"))
        wide = page.eval_on_selector_all(
            "#explain-body table", "ts => ts.filter((t) => t.getBoundingClientRect().right"
            " > document.getElementById('explain').clientWidth + 0.5).map((t) => t.className)")
        tall = page.eval_on_selector_all(
            "#explain-body td:not(:last-child)",
            "tds => tds.filter((td) => { const r = document.createRange();"
            " r.selectNodeContents(td);"  # one rectangle per line of its text
            " return new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size > 1; })"
            ".map((td) => td.innerText)")
    assert panel["x"] + panel["width"] <= 390.5, panel
    assert close["x"] + close["width"] <= 390.5, close
    assert tall == [], tall
    assert wide == [], wide  # no column cut at the panel's edge
