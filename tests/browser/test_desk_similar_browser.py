"""相似案例推荐 on the department workbench (/desk, issue 22), in headless Chromium against a live
server with two worker processes: a handler opening a case sees how similar earlier cases were
handled — the ten most similar ones their department may read, each with its class, similarity,
department, days to close, rework and reply — and a click opens one. On the planted desk city with
a legacy system's 60 weeks of imported history (three classes, three departments); Chinese and
English, desktop and phone widths. Screenshots go to test-artifacts/desk_similar_*.png."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from tests.support.database import truncate_all
from tests.support.desk_browser import chromium, open_desk, server, wait_state
from tests.support.desk_city import dispatched, plant_desk, token
from tests.support.intel_planting import import_history
from tests.support.language import foreign_words

__all__ = ["chromium", "server"]  # the fixtures, from tests.support.desk_browser

PHONE = {"width": 390, "height": 844}
# the street's dirt (网格保洁队's class)
DIRT = "马路上很脏，路边垃圾成堆"


@pytest.fixture(scope="module")
def history(engine: Engine, server: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[str]:
    """The desk city and its 60 weeks of history, imported once for the module's two tests
    (each files a case of its own and reads its own department's history). The tests use the
    session's ``engine``, not ``db`` (which would empty the database before each test); the
    database is emptied before the import and after the module."""
    truncate_all(engine)
    plant_desk(engine)
    import_history(engine, tmp_path_factory.mktemp("history"), weeks=60)
    yield server
    truncate_all(engine)


def dirt_dispatched(base: str) -> dict[str, Any]:
    return dispatched(base, category="E0103", description=DIRT)


def open_with_similar(page: Any, case_id: int) -> None:
    page.click(f"#task-list [data-case='{case_id}']")
    page.wait_for_selector(f"article.case[data-case-id='{case_id}'][data-intel=ready]",
                           timeout=30_000)


def csp_watch(page: Any) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text)
            if "Content Security Policy" in m.text else None)
    return found


def test_a_handler_sees_how_similar_cases_were_handled(chromium: Any, history: str, engine: Engine,
                                                       artifacts: Path) -> None:
    base = history
    case = dirt_dispatched(base)
    page = open_desk(chromium, base, "h-liu")
    csp = csp_watch(page)
    open_with_similar(page, case["id"])
    block = page.inner_text("#intel-similar")
    assert "以往类似案件是怎么处理的" in block
    items = page.locator("#similar-list li.similar")
    assert items.count() == 10
    ids = [int(x) for x in page.eval_on_selector_all(
        "#similar-list li.similar", "els => els.map(e => e.dataset.similar)")]
    with engine.connect() as conn:
        departments = set(conn.execute(text(
            "SELECT department_code FROM case_record WHERE id = ANY(:i)"), {"i": ids}).scalars())
    assert departments == {"D_GRID"}  # the cleaning team's own cases only
    # words of the garbage class (城管's): the dispatcher, who reads every case, gets those
    # cases; the handler only the cleaning team's (the answers are scoped, not merely short)
    def found(user: str) -> set[str]:
        r = httpx.post(f"{base}/similar", json={"text": "垃圾堆放发臭", "k": 10}, timeout=30,
                       headers={"Authorization": f"Bearer {token(base, user)}"})
        assert r.status_code == 200, r.text
        return {i["outcome"]["department"] for i in r.json()["items"]}
    assert "D_CITY" in found("disp-wang") and found("h-liu") == {"D_GRID"}
    first = items.first.inner_text()
    assert "网格保洁队" in first and "天办结" in first and "相似度" in first, first
    assert "已处理" in first and "未返工" in first and "道路不洁" in first, first
    # it sits after the steps: the case first, then what was done before
    order = page.evaluate("() => [...document.querySelectorAll('article.case > section')]"
                          ".map(s => s.id || s.className)")
    assert order.index("intel-similar") > order.index("steps"), order
    assert foreign_words(page, "zh-CN") == []
    page.locator("#intel-similar").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "desk_similar_1280_zh.png"))
    # a click opens the earlier case in the workbench; the handler's own case still works
    page.click(f"#similar-list [data-case='{ids[0]}']")
    page.wait_for_selector(f"article.case[data-case-id='{ids[0]}']", timeout=15_000)
    assert page.get_attribute("#case-state", "data-state") == "closed"
    page.click(f"#task-list [data-case='{case['id']}']")
    wait_state(page, "dispatched")
    page.click(".actions button[data-action=accept]")
    wait_state(page, "accepted")
    page.wait_for_selector(f"article.case[data-case-id='{case['id']}'][data-intel=ready]")
    assert page.locator("#similar-list li.similar").count() == 10
    assert not page.errors, page.errors
    assert csp == [], csp

    for lang, viewport, name in (("en", {"width": 1280, "height": 800}, "1280_en"),
                                 ("zh-CN", PHONE, "390_zh"), ("en", PHONE, "390_en")):
        other = open_desk(chromium, base, "h-liu", viewport=viewport, lang=lang)
        csp = csp_watch(other)
        other.click("[data-tab=handle]")  # accepted above: now in handling
        open_with_similar(other, case["id"])
        text_ = other.inner_text("#intel-similar")
        if lang == "en":
            assert "How similar cases were handled before" in text_
            assert "closed in" in text_ and "similarity" in text_.lower(), text_
        assert other.locator("#similar-list li.similar").count() == 10
        assert foreign_words(other, lang) == []
        other.locator("#intel-similar").scroll_into_view_if_needed()
        other.screenshot(path=str(artifacts / f"desk_similar_{name}.png"))
        assert not other.errors, other.errors
        assert csp == [], csp
        other.context.close()


def test_another_departments_handler_gets_no_similar_cases_of_others(
        chromium: Any, history: str, engine: Engine) -> None:
    """The street's department has no history: its handler's case shows none (not the
    cleaning team's or the lamp company's cases)."""
    base = history
    case = dirt_dispatched(base)
    with engine.begin() as conn:  # the dispatcher sent it to the street's department instead
        conn.execute(text("UPDATE case_record SET department_code = 'D_STREET' WHERE id = :i"),
                     {"i": case["id"]})
    page = open_desk(chromium, base, "h-street")
    page.evaluate(f"window.gridcore.showCase({case['id']})")
    page.wait_for_selector(f"article.case[data-case-id='{case['id']}'][data-intel=ready]",
                           timeout=30_000)
    assert page.locator("#similar-list li.similar").count() == 0
    assert "暂无相似的历史案卷" in page.inner_text("#intel-similar")
    assert not page.errors, page.errors
