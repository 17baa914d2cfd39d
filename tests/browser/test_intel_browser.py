"""Issue 22's suggestions where people work, in headless Chromium against a live server with two
worker processes, on the planted case city with 60 weeks of imported history and the models
`gridcore learn` trains on it:

- the dispatcher's case panel (/map): the class the model suggests (and that it agrees with the
  case), the learned department beside the rule's proposal with its confidence and its reason
  in counts, "dispatch as proposed" opening the form with that department (the rule still
  preselected first: choosing the model's asks for the reason), and the 10 most similar earlier
  cases with how each ended — in Chinese and in English;
- a grid worker's panel: no dispatch block (not theirs), similar cases only from their grid;
- the forecast as a layer of /map: off, on with a legend, areas drawn, a warning outlined;
- the phone's report form (mobile emulation): a class suggested while typing, a tap takes it.
Screenshots go to test-artifacts/intel_*.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from layers.intelligence.learning import learn
from tests.support.browser import settle
from tests.support.cases import GRID_001, GRID_002, INSIDE_001, INSIDE_002
from tests.support.database import truncate_all
from tests.support.desk_browser import chromium, open_map, server, wait_state
from tests.support.desk_city import PASSWORD, plant_desk, report
from tests.support.intel_planting import import_history
from tests.support.language import foreign_words

__all__ = ["chromium", "server"]  # the fixtures, from tests.support.desk_browser

LAMP_TEXT = "一排路灯都不亮了，晚上很黑"


@pytest.fixture(scope="module")
def learnt(engine: Engine, server: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """The desk city with a legacy system's 60 weeks of cases, and every model trained on them
    and active (the server's processes load them at their next answer).

    Built once for the module's tests (the import and the training took 20-70 s a test): each
    test files cases of its own and reads only those and the history, which no test changes
    but the forecast's, which moves 15 cases of a class the others do not look at. The tests
    use the session's ``engine``, not ``db`` (which empties the database before each test);
    the database is emptied before the build and after the module."""
    truncate_all(engine)
    plant_desk(engine)
    import_history(engine, tmp_path_factory.mktemp("history"), weeks=60)
    done = {x.kind: x for x in learn(engine, timezone="Asia/Shanghai")}  # the import's
    assert all(x.activated for x in done.values()), {k: x.why for k, x in done.items()}
    yield server
    truncate_all(engine)


def open_case(page: Any, case_id: int) -> None:
    page.evaluate(f"window.gridcore.showCase({case_id})")
    page.wait_for_selector(f"article.case[data-case-id='{case_id}'][data-intel=ready]",
                           timeout=30_000)


def test_the_dispatchers_panel_shows_the_suggestions(chromium: Any, learnt: str, engine: Engine,
                                                     artifacts: Path) -> None:
    base = learnt
    case = report(base, "w-li", INSIDE_001, category="P0120", description=LAMP_TEXT)
    page = open_map(chromium, base, "disp-wang")
    page.click(f"#queue-list [data-case='{case['id']}']")
    page.wait_for_selector(f"article.case[data-case-id='{case['id']}'][data-intel=ready]",
                           timeout=30_000)
    # 智能分类: the lamp class, agreeing with what the worker chose, and the words behind it
    assert page.get_attribute("#intel-class-top", "data-category") == "P0120"
    assert "一致" in page.inner_text("#intel-class-verdict")
    assert "灯" in page.inner_text("#intel-classify")
    # 智能派遣 beside the rule: the rule names the roads office, the history went to the lamp
    # company; the reason counts the cases, and the rule still wins
    assert page.get_attribute("#proposal-dept", "data-code") == "D_ROADS"
    assert page.get_attribute("#intel-dispatch-top", "data-department") == "D_LAMP"
    assert page.get_attribute("#intel-dispatch-top", "data-source") == "rule"
    reason = page.inner_text("#intel-dispatch-reason")
    assert "路灯维护公司" in page.inner_text("#intel-dispatch-top")
    assert "/" in reason and "件" in reason, reason
    assert "规则" in page.inner_text("#intel-dispatch-verdict")
    # the advice sits right after the rule's proposal, the similar cases after the steps
    order = page.evaluate("() => [...document.querySelectorAll('article.case > section')]"
                          ".map(s => s.id || s.className)")
    assert order.index("intel-advice") == order.index("proposal") + 1, order
    assert order.index("intel-similar") > order.index("steps"), order
    # 相似案例推荐: ten earlier lamp cases with how each ended
    items = page.locator("#similar-list li.similar")
    assert items.count() == 10
    first = items.first.inner_text()
    assert "路灯维护公司" in first and "天办结" in first and "已处理" in first, first
    assert foreign_words(page, "zh-CN") == []  # the chrome in one language, data marked
    page.locator("#intel-advice").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "intel_map_panel_zh.png"))
    # "dispatch as proposed": the panel's form with the model's department; not the rule's,
    # so the reason is asked for
    for action, state in (("verify", "verified"), ("register", "registered")):
        page.click(f".actions button[data-action={action}]")
        wait_state(page, state)
    page.wait_for_selector("article.case[data-intel=ready] #intel-dispatch-use")
    page.click("#intel-dispatch-use")
    assert page.input_value("#step select[name=department]") == "D_LAMP"
    assert page.is_visible("#step .override")
    page.fill("#step textarea[name=reason]", "历史案卷均由路灯维护公司处理")
    page.screenshot(path=str(artifacts / "intel_map_dispatch_as_proposed.png"))
    page.click("#step button[type=submit]")
    wait_state(page, "dispatched")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT department_code FROM case_record WHERE id = :i"),
                            {"i": case["id"]}).scalar() == "D_LAMP"
    assert not page.errors, page.errors
    # the same panel in English, from the same catalogue
    en = open_map(chromium, base, "disp-wang", lang="en")
    open_case(en, case["id"])
    assert "Suggested class" in en.inner_text("#intel-classify")
    assert "similar cases in" in en.inner_text("#intel-dispatch-reason")
    assert "closed in" in en.inner_text("#similar-list")
    assert foreign_words(en, "en") == []
    en.locator("#intel-advice").scroll_into_view_if_needed()
    en.screenshot(path=str(artifacts / "intel_map_panel_en.png"))
    assert not en.errors, en.errors


def test_a_grid_worker_sees_similar_cases_of_their_grid_only(chromium: Any, learnt: str,
                                                              engine: Engine,
                                                              artifacts: Path) -> None:
    base = learnt
    case = report(base, "w-li", INSIDE_001, category="E0103", description="路边垃圾成堆，很脏")
    page = open_map(chromium, base, "w-li")
    open_case(page, case["id"])
    assert page.is_hidden("#intel-dispatch")  # the learned dispatch is the dispatcher's
    ids = page.evaluate("() => [...document.querySelectorAll('#similar-list li')]"
                        ".map(l => Number(l.dataset.similar))")
    assert len(ids) == 10
    with engine.connect() as conn:  # scoped like every other answer: w-li's grid only
        grids = set(conn.execute(text("SELECT grid_code FROM case_record WHERE id = ANY(:i)"),
                                 {"i": ids}).scalars())
    assert grids == {GRID_001}, grids
    page.locator("#intel-advice").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "intel_map_panel_worker.png"))
    assert not page.errors, page.errors


def test_the_forecast_is_a_layer_of_the_map(chromium: Any, learnt: str, engine: Engine,
                                           artifacts: Path) -> None:
    base = learnt
    # this week far above expectation in the east grid: a warning (全域预警)
    with engine.begin() as conn:
        week = conn.execute(text(
            "SELECT f.week FROM case_forecast f JOIN intel_model m ON m.id = f.model_id "
            "AND m.active LIMIT 1")).scalar_one()
        moved = list(conn.execute(text(
            "SELECT id FROM case_record WHERE grid_code = :g AND category_key = 'E0102' "
            "ORDER BY created_at DESC LIMIT 15"), {"g": GRID_002}).scalars())
        # the report time is the partition key: the case registry moves with it (its key
        # is checked at commit)
        for table in ("case_key", "case_record"):
            conn.execute(text(f"UPDATE {table} SET created_at = :at WHERE id = ANY(:i)"),
                         {"at": week + timedelta(days=1, hours=10), "i": moved})
    page = open_map(chromium, base, "disp-wang")
    page.evaluate("document.getElementById('layers').open = true")
    assert page.is_hidden("#forecast-legend")
    page.select_option("#forecast-level", "grid")
    page.check("#forecast-on")
    page.wait_for_function("() => Number(document.body.dataset.forecast) === 2",
                           timeout=30_000)
    assert page.is_visible("#forecast-legend")
    assert page.is_visible("#forecast-warning-key")
    page.evaluate("() => window.gridcore.map.jumpTo({center: window.gridcore.gcj(116.405, "
                  "39.9025), zoom: 15.5})")  # both grids in view
    settle(page)
    drawn = page.evaluate("() => window.gridcore.map.queryRenderedFeatures(undefined, "
                          "{layers: ['forecast-fill']}).map(f => f.properties.code)")
    assert set(drawn) == {GRID_001, GRID_002}, drawn
    warned = page.evaluate("() => window.gridcore.map.queryRenderedFeatures(undefined, "
                           "{layers: ['forecast-warning']}).map(f => f.properties.code)")
    assert set(warned) == {GRID_002}, warned
    assert "v" in page.inner_text("#forecast-status")
    page.screenshot(path=str(artifacts / "intel_map_forecast_layer.png"))
    # one class: the queue's class filter narrows the layer
    page.select_option("#f-class", "P0120")
    page.wait_for_function("() => window.gridcore.forecast.layer.category === 'P0120' && "
                           "document.body.dataset.forecast === '2'", timeout=30_000)
    # another basemap is another style: the layer comes back on it
    other = page.evaluate("() => [...document.querySelectorAll('#basemap option')]"
                          ".map(o => o.value).find(v => v !== document.getElementById("
                          "'basemap').value)")
    assert other, "the map offers one basemap only"
    page.select_option("#basemap", other)
    page.wait_for_function("() => !!window.gridcore.map.getLayer('forecast-fill')",
                           timeout=30_000)
    page.uncheck("#forecast-on")
    # off, and gone from the map (a style still being swapped in drops it once it is in)
    page.wait_for_function("() => document.body.dataset.forecast === 'off' && "
                           "!window.gridcore.map.getLayer('forecast-fill')", timeout=30_000)
    assert page.is_hidden("#forecast-legend")
    assert not page.errors, page.errors


def test_the_phone_suggests_the_class_while_typing(chromium: Any, learnt: str,
                                                  artifacts: Path) -> None:
    base = learnt
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
        has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai",
        geolocation={"longitude": INSIDE_002[0], "latitude": INSIDE_002[1], "accuracy": 10},
        permissions=["geolocation"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and "Content Security Policy" in m.text else None)
    page.goto(f"{base}/m/")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30_000)
    page.fill("#username", "w-zhao")
    page.fill("#password", PASSWORD)
    page.click("#signin-button")
    page.wait_for_selector("[data-screen=where]", timeout=30_000)
    page.goto(f"{base}/m/#/report")
    page.wait_for_selector("#description", timeout=30_000)
    assert page.is_hidden("#category-suggest")
    page.type("#description", LAMP_TEXT, delay=40)  # typed: one request after the pause
    page.wait_for_selector("#category-suggest .chip.suggestion", timeout=15_000)
    first = page.locator("#category-suggest .chip.suggestion").first
    assert first.get_attribute("data-category") == "P0120"
    assert "%" in first.inner_text()
    page.screenshot(path=str(artifacts / "intel_field_suggestion.png"))
    first.tap()
    assert "P0120" in page.inner_text("#category-button")
    assert "on" in (first.get_attribute("class") or "")
    page.screenshot(path=str(artifacts / "intel_field_suggestion_taken.png"))
    assert not errors, errors
    context.close()



GIBBERISH = "asdkjh qwe"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_phone_says_when_the_words_are_not_known(chromium: Any, learnt: str, lang: str,
                                                     artifacts: Path) -> None:
    """Gibberish showed the prior's top class at ~8 % as a suggestion: now the phone says
    there is no suggestion from these words, in the worker's language; known words get their
    class back, and clearing the text clears what it said."""
    base = learnt
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
        has_touch=True, locale=lang, timezone_id="Asia/Shanghai",
        geolocation={"longitude": INSIDE_002[0], "latitude": INSIDE_002[1], "accuracy": 10},
        permissions=["geolocation"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/m/?lang={lang}")
    page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30_000)
    page.fill("#username", "w-zhao")
    page.fill("#password", PASSWORD)
    page.click("#signin-button")
    page.wait_for_selector("[data-screen=where]", timeout=30_000)
    page.goto(f"{base}/m/?lang={lang}#/report")
    page.wait_for_selector("#description", timeout=30_000)
    with page.expect_response(lambda r: r.url.endswith("/classify")) as answer:
        page.type("#description", GIBBERISH, delay=30)
    assert answer.value.json()["no_evidence"] is True
    page.wait_for_selector("#suggest-none", timeout=15_000)
    said = page.inner_text("#category-suggest")
    expected = "无法从文字判断类别" if lang == "zh-CN" else "No suggestion: the words are not known"
    assert expected in said, said
    assert page.locator("#category-suggest .chip.suggestion").count() == 0
    assert "%" not in said
    page.locator("#category-suggest").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / f"intel_field_no_evidence_{lang}.png"))
    page.fill("#description", "")
    page.type("#description", LAMP_TEXT, delay=30)
    page.wait_for_selector("#category-suggest .chip.suggestion[data-category=P0120]",
                           timeout=15_000)
    assert page.is_hidden("#suggest-none")
    chip = page.inner_text("#category-suggest .chip.suggestion[data-category=P0120]")
    assert chip[:1].isupper() or lang == "zh-CN", chip  # a label: 'Street lamp 97%'
    page.fill("#description", "")
    page.type("#description", "x")  # below the least words asked about: nothing is said
    page.wait_for_selector("#category-suggest", state="hidden", timeout=5_000)
    assert not errors, errors
    context.close()


def test_the_dispatchers_panel_says_when_the_words_are_not_known(chromium: Any, learnt: str,
                                                                 artifacts: Path) -> None:
    base = learnt
    case = report(base, "w-li", INSIDE_001, category="P0120", description=GIBBERISH)
    page = open_map(chromium, base, "disp-wang")
    open_case(page, case["id"])
    assert page.get_attribute("#intel-class-none", "data-basis") == "unknown_words"
    assert "无法从文字判断类别" in page.inner_text("#intel-classify")
    assert page.locator("#intel-class-top").count() == 0
    page.locator("#intel-advice").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "intel_map_no_evidence_zh.png"))
    assert not page.errors, page.errors


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_manager_on_the_map_is_not_shown_a_refusal(chromium: Any, learnt: str, lang: str,
                                                     artifacts: Path) -> None:
    """A manager (who comes to /map from the evaluation board's case links) may not classify
    (case.report) nor see the learned dispatch: the panel said, in red and in the server's
    English, "role manager may not call POST /classify (case.report)". Neither block is shown
    to them now; the similar cases still are."""
    base = learnt
    case = report(base, "w-li", INSIDE_001, category="P0120", description=LAMP_TEXT)
    page = open_map(chromium, base, "boss-zhou", lang=lang)
    open_case(page, case["id"])
    panel = page.inner_text("#details")
    assert "may not" not in panel and "/classify" not in panel, panel
    assert page.locator("#details .intel .error").count() == 0
    assert page.is_hidden("#intel-advice")
    page.wait_for_selector("#similar-list li", timeout=30_000)
    seen = foreign_words(page, lang)
    assert seen == [], "; ".join(seen)
    page.locator("#details").screenshot(path=str(artifacts / f"intel_map_panel_manager_{lang}.png"))
    assert not page.errors, page.errors
