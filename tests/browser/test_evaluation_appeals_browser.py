"""Appeals (申诉) on the evaluation board in headless Chromium, in production (signed in), on
the planted month: a department handler appeals a penalised case of their department from its
explanation (a reason is required; a refusal of the API is shown in the page's language), the
case then shows its appeal's state and decision deadline; a manager sees it pending in the
appeals list and decides it (a reason is required), and the ranking's score follows; the filer
never gets the decision buttons. In Chinese and English, on a phone and a desk (screenshots in
test-artifacts/, and in $APPEAL_SHOTS when it is set)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from api.security.identity import issue_token
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
DETAIL_READY = "() => document.getElementById('detail').dataset.ready === '1'"
PASSWORD = "a-long-enough-password"
WORDS = {
    "zh-CN": {"missing": "请填写申诉理由", "exists": "这件案件的同一扣分项已有申诉",
              "pending": "申诉待处理", "due": "处理时限", "approved": "申诉已批准",
              "rejected": "申诉已驳回", "decision_missing": "请填写处理意见",
              "before": "申诉前", "this_month": "本月（进行中）", "in_time": "按时处理"},
    "en": {"missing": "Please give a reason for the appeal",
           "exists": "an appeal about this case and penalty is already pending",
           "pending": "Appeal pending", "due": "decision due", "approved": "Appeal approved",
           "rejected": "Appeal rejected",
           "decision_missing": "Please give a reason for the decision",
           "before": "before appeals", "this_month": "This month (in progress)",
           "in_time": "decided in time"},
}


def _shots(artifacts: Path) -> list[Path]:
    extra = os.environ.get("APPEAL_SHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
    return [artifacts, *([Path(extra)] if extra else [])]


def _shot(page: Any, artifacts: Path, name: str) -> None:
    for folder in _shots(artifacts):
        page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


CSP: list[str] = []  # the page's own content broke its Content-Security-Policy


def _signed_in(browser: Any, url: str, lang: str, device: dict[str, Any], user: str) -> Any:
    page = browser.new_context(locale=lang, **device).new_page()
    page.on("console", lambda m: CSP.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.goto(f"{url}/evaluation/board?period={PERIOD}&lang={lang}")
    page.wait_for_function(READY)
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#ranking tbody tr")
    page.wait_for_selector("#appeals[data-ready='1']", state="attached")
    return page


def _no_sideways(page: Any, device: dict[str, Any]) -> None:
    width = device["viewport"]["width"]
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_handler_appeals_and_a_manager_decides(db: Engine, lang: str,
                                                 artifacts: Path) -> None:
    ids = plant_month(db)
    add_user(db, "d1-handler", PASSWORD, "department_handler", department="D1")
    add_user(db, "chief", PASSWORD, "manager")
    tree = Settings()
    tree.security = tree.security.model_copy(update={"env": "production"})
    # the planted month (2026-10) is past: keep its appeals open
    tree.evaluation = tree.evaluation.model_copy(update={"appeal_window_days": 200})
    words = WORDS[lang]
    # Chinese: the handler on a phone, the manager at a desk; English the other way round
    handler_device, boss_device = (PHONE, DESK) if lang == "zh-CN" else (DESK, PHONE)
    short = "zh" if lang == "zh-CN" else "en"
    hname = "phone" if handler_device is PHONE else "desk"
    bname = "phone" if boss_device is PHONE else "desk"
    errors: list[str] = []
    CSP.clear()
    with live_server(db, tree) as url, chromium_browser() as browser:
        # -- the department's handler ---------------------------------------------------
        page = _signed_in(browser, url, lang, handler_device, "d1-handler")
        page.on("pageerror", lambda e: errors.append(str(e)))
        # the month in progress is offered, last month stays the default
        options = page.locator("select[name=period] option")
        assert options.first.inner_text() == words["this_month"]
        assert page.locator("select[name=period]").input_value() == PERIOD
        d1 = page.locator("#ranking tbody tr[data-code='D1']")
        score_before = d1.locator(".score").inner_text()
        d1.click()
        page.wait_for_function(DETAIL_READY)
        late = page.locator(f"#detail li[data-case='{ids['K1']}'][data-penalty='overdue']")
        rework = page.locator(f"#detail li[data-case='{ids['K2']}'][data-penalty='rework']")
        assert late.locator(".appeal-button").is_visible()
        assert rework.locator(".appeal-button").is_visible()
        # cases that carry no penalty get no appeal action
        assert page.locator("#detail .appeal-button").count() == 2
        late.locator(".appeal-button").click()
        form = late.locator("form.reason-form")
        form.locator("button[type=submit]").click()  # no reason
        assert form.locator(".error").inner_text() == words["missing"]
        assert form.locator("textarea").get_attribute("aria-invalid") == "true"
        form.locator("textarea").fill("派遣时间记错，实际处置在时限内 / dispatched at the "
                                      "wrong time")
        late.scroll_into_view_if_needed()
        _shot(page, artifacts, f"appeal_form_{hname}_{short}")
        form.locator("button[type=submit]").click()
        chip = late.locator(".appeal-chip.state-filed")
        chip.wait_for()
        assert words["pending"] in chip.inner_text() and words["due"] in chip.inner_text()
        assert late.locator(".appeal-button").count() == 0
        # another handler files the rework appeal first: the page says why it was refused
        rework.locator(".appeal-button").click()
        token, _ = issue_token(tree.security, "d1-handler", "department_handler", minutes=5)
        r = httpx.post(f"{url}/evaluation/appeals", headers={"Authorization": f"Bearer {token}"},
                       json={"kind": "department", "party": "D1", "case_id": ids["K2"],
                             "penalty": "rework", "period": PERIOD,
                             "reason": "the contractor's rework"})
        assert r.status_code == 201, r.text
        rework.locator("textarea").fill("返工不是我们的责任 / not ours")
        rework.locator("button[type=submit]").click()
        refusal = rework.locator(".error")
        page.wait_for_function(
            "(el) => el.textContent.length > 0", arg=refusal.element_handle())
        assert words["exists"] in refusal.inner_text(), refusal.inner_text()
        assert foreign_words(page, lang) == []
        _no_sideways(page, handler_device)
        _shot(page, artifacts, f"appeal_refused_{hname}_{short}")
        page.keyboard.press("Escape")
        # the handler's own appeals under the ranking: pending, never theirs to decide
        page.reload()
        page.wait_for_function(READY)
        page.wait_for_selector("#appeals[data-ready='1']", state="attached")
        cards = page.locator("#appeals-list li.appeal-card")
        assert cards.count() == 2
        assert page.locator("#appeals-list .decide").count() == 0
        assert page.locator("#appeals-list .own").count() == 2  # someone else decides
        assert foreign_words(page, lang) == []
        page.locator("#appeals").scroll_into_view_if_needed()
        _no_sideways(page, handler_device)
        _shot(page, artifacts, f"appeals_list_handler_{hname}_{short}")
        # -- a manager decides ----------------------------------------------------------
        boss = _signed_in(browser, url, lang, boss_device, "chief")
        boss.on("pageerror", lambda e: errors.append(str(e)))
        cards = boss.locator("#appeals-list li.appeal-card")
        assert cards.count() == 2
        assert cards.locator(".appeal-chip.state-filed").count() == 2  # pending first
        _shot(boss, artifacts, f"board_manager_{bname}_{short}")
        boss.locator("#appeals").scroll_into_view_if_needed()
        _shot(boss, artifacts, f"appeals_list_manager_{bname}_{short}")
        first = boss.locator("#appeals-list li.appeal-card", has_text=f"C{ids['K1']:08d}")
        first.locator("button[data-decision=approve]").click()
        decide = first.locator("form.reason-form")
        decide.locator("button[type=submit]").click()
        assert decide.locator(".error").inner_text() == words["decision_missing"]
        decide.locator("textarea").fill("核实派遣记录有误 / the dispatch record was wrong")
        _shot(boss, artifacts, f"appeal_decide_{bname}_{short}")
        decide.locator("button[type=submit]").click()
        approved = boss.locator("#appeals-list li.appeal-card.state-approved")
        approved.wait_for()
        assert words["approved"] in approved.locator(".appeal-chip").inner_text()
        assert words["in_time"] in approved.locator(".appeal-chip").inner_text()
        # the ranking follows: D1's score rose, its score before appeals beside it
        score = boss.locator("#ranking tbody tr[data-code='D1'] .score")
        assert words["before"] in score.inner_text()
        assert score.inner_text().split()[0] != score_before.split()[0]
        second = boss.locator("#appeals-list li.appeal-card", has_text=f"C{ids['K2']:08d}")
        second.locator("button[data-decision=reject]").click()
        second.locator("textarea").fill("核查未通过 / the check failed on site")
        second.locator("button[type=submit]").click()
        boss.locator("#appeals-list li.appeal-card.state-rejected").wait_for()
        assert boss.locator("#appeals-list .decide").count() == 0
        assert foreign_words(boss, lang) == []
        _no_sideways(boss, boss_device)
        boss.locator("#appeals").scroll_into_view_if_needed()
        _shot(boss, artifacts, f"appeals_decided_{bname}_{short}")
        # -- the handler sees the decisions on the case -------------------------------
        page.reload()
        page.wait_for_function(READY)
        page.locator("#ranking tbody tr[data-code='D1']").click()
        page.wait_for_function(DETAIL_READY)
        rejected = page.locator(f"#detail li[data-case='{ids['K2']}'][data-penalty='rework']")
        assert words["rejected"] in rejected.locator(".appeal-chip").inner_text()
        assert rejected.locator(".appeal-button").is_visible()  # may appeal again
        own = page.locator("#detail .party-appeals li")
        assert own.count() == 2 and words["approved"] in own.all_inner_texts()[0] + \
            own.all_inner_texts()[1]
        page.locator("#detail .party-appeals").scroll_into_view_if_needed()
        _shot(page, artifacts, f"appeal_decided_detail_{hname}_{short}")
        # the other device's screenshots of the same states
        for device, name in ((boss_device, bname), (handler_device, hname)):
            other = browser.new_context(locale=lang, **device).new_page()
            other.goto(f"{url}/evaluation/board?period={PERIOD}&lang={lang}")
            other.wait_for_function(READY)
            other.fill("#username", "d1-handler")
            other.fill("#password", PASSWORD)
            other.click("#signin button[type=submit]")
            other.wait_for_selector("#appeals[data-ready='1']", state="attached")
            other.locator("#ranking tbody tr[data-code='D1']").click()
            other.wait_for_function(DETAIL_READY)
            _no_sideways(other, device)
            _shot(other, artifacts, f"handler_detail_{name}_{short}")
    assert errors == []
    assert CSP == []  # no inline script or style: the page's policy holds as it is


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_month_so_far_is_offered_beside_last_month(db: Engine, lang: str,
                                                       artifacts: Path) -> None:
    """Opened without a period the board shows last month; the month so far heads the list,
    labelled as in progress, and once chosen says above the ranking that it is not over."""
    plant_month(db)
    words = WORDS[lang]
    short = "zh" if lang == "zh-CN" else "en"
    with live_server(db) as url, chromium_browser() as browser:
        for name, device in (("phone", PHONE), ("desk", DESK)):
            page = browser.new_context(locale=lang, **device).new_page()
            page.goto(f"{url}/evaluation/board?lang={lang}")
            page.wait_for_function(READY)
            select = page.locator("select[name=period]")
            first = select.locator("option").first
            assert first.inner_text() == words["this_month"]
            assert select.input_value() == select.locator("option").nth(1).get_attribute(
                "value")  # last month
            assert not page.locator("#in-progress-note").count()
            current = first.get_attribute("value")
            select.select_option(current)
            page.wait_for_url(f"**period={current}**")
            page.wait_for_function(READY)
            assert page.locator("#in-progress-note").is_visible()
            assert page.locator("select[name=period] option:checked").inner_text() \
                == words["this_month"]
            assert foreign_words(page, lang) == []
            _no_sideways(page, device)
            _shot(page, artifacts, f"month_so_far_{name}_{short}")
