"""The dispatcher's map (一张图 · 指挥调度) in headless Chromium against a live server with two
worker processes (as ``gridcore serve --workers 2``), on the planted case city with real users:
the closed loop from the queue accepting the preselected proposal, an override that needs its
reason, duplicates merged in one click with the outcome reaching the merged reporter, a
send-back re-proposed in the dispatcher's queue, search, and the clock warning and
supervising once. Screenshots at 1280×800 and 1024×768 go to test-artifacts/."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.support.cases import INSIDE_001, INSIDE_002, LAMP
from tests.support.data import REPO
from tests.support.desk_browser import (
    TABLET,
    WIDE,
    chromium,
    city,
    open_map,
    server,
    toasts_shown,
    wait_state,
    wait_toast,
    watch_toasts,
)
from tests.support.desk_city import dispatched, report, step

__all__ = ["chromium", "city", "server"]  # the fixtures, from tests.support.desk_browser


def queue_count(page, bucket: str) -> int:  # type: ignore[no-untyped-def]
    return int(page.inner_text(f"[data-count={bucket}]"))


def reload_queue(page) -> None:  # type: ignore[no-untyped-def]
    page.evaluate("() => window.gridcore.loadQueue()")


def state_of(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.get_attribute("#case-state", "data-state"))


def test_dispatcher_accepts_the_preselected_proposal(chromium, city: str, db: Engine,
                                                     artifacts: Path) -> None:
    base = city
    case = report(base, "w-li", INSIDE_001, description="路面有大片油污，车辆打滑")
    other = report(base, "w-zhao", LAMP, category="P0120", description="路灯不亮")
    page = open_map(chromium, base, "disp-wang")
    assert queue_count(page, "verify") == 2
    page.screenshot(path=str(artifacts / "map_queue_1280.png"))
    page.click(f"#queue-list [data-case='{case['id']}']")
    page.wait_for_selector("#case-title")
    assert case["public_no"] in page.inner_text("#case-title")
    # The proposal and the rule that made it, before anything is dispatched.
    assert page.get_attribute("#proposal-dept", "data-code") == "D_GRID"
    assert "#3" in page.inner_text("#proposal-basis")  # the grid's rule, by its number
    for action, state in (("verify", "verified"), ("register", "registered")):
        page.click(f".actions button[data-action={action}]")
        wait_state(page, state)
    page.click(".actions button[data-action=dispatch]")
    page.wait_for_selector("#step select[name=department]")
    assert page.input_value("#step select[name=department]") == "D_GRID"  # preselected
    assert page.is_hidden("#step .override")  # no reason asked for the proposal
    page.screenshot(path=str(artifacts / "map_dispatch_form_1280.png"))
    page.click("#step button[type=submit]")
    wait_state(page, "dispatched")
    with db.connect() as conn:
        dept, override = conn.execute(text(
            "SELECT c.department_code, h.details ->> 'override' FROM case_record c JOIN "
            "case_history h ON h.case_id = c.id AND h.action = 'dispatch' WHERE c.id = :i"),
            {"i": case["id"]}).one()
    assert (dept, override) == ("D_GRID", "false")
    assert "D_GRID" in page.inner_text(".facts")
    # An override asks for its reason; without one nothing is dispatched.
    page.click(f"#queue-list [data-case='{other['id']}']")
    wait_state(page, "reported")
    for action, state in (("verify", "verified"), ("register", "registered")):
        page.click(f".actions button[data-action={action}]")
        wait_state(page, state)
    page.click(".actions button[data-action=dispatch]")
    assert page.input_value("#step select[name=department]") == "D_LAMP"
    page.select_option("#step select[name=department]", "D_ROADS")
    assert page.is_visible("#step .override")
    page.click("#step button[type=submit]")
    # refused on the page: the form says the reason is required, and nothing was sent
    page.wait_for_function("() => document.querySelector('#step .error')?.textContent.trim()",
                           timeout=10_000)
    assert state_of(page) == "registered"
    page.fill("#step textarea[name=reason]", "路灯所负责本路段")
    page.screenshot(path=str(artifacts / "map_override_1280.png"))
    page.click("#step button[type=submit]")
    wait_state(page, "dispatched")
    history = page.inner_text("#history")
    assert "路灯所负责本路段" in history and "改派" in history
    assert not page.errors, page.errors


def test_the_next_steps_form_outlives_the_map_catching_up(chromium, city: str) -> None:
    """After a step the map reloads its queue and tiles before it redraws the case; the case's
    live event usually draws the new state first, and a dispatcher who opens the next step's form
    in that gap must keep it (CI once lost the dispatch form this way, under load)."""
    base = city
    case = report(base, "w-li", INSIDE_001, description="井盖缺失，行人危险")
    page = open_map(chromium, base, "disp-wang")
    page.click(f"#queue-list [data-case='{case['id']}']")
    wait_state(page, "reported")
    page.click(".actions button[data-action=verify]")
    wait_state(page, "verified")
    # The catching-up made slow, as on a loaded server; the flag says when it is over.
    page.evaluate("""() => { const p = window.gridcore.panel, slow = p.onChanged;
        window.caughtUp = false;
        p.onChanged = async (id) => { await new Promise((r) => setTimeout(r, 5000));
                                      await slow(id); window.caughtUp = true; }; }""")
    page.click(".actions button[data-action=register]")
    wait_state(page, "registered")
    assert page.evaluate("window.caughtUp") is False  # drawn by the live event, not the step
    page.click(".actions button[data-action=dispatch]")
    page.wait_for_selector("#step select[name=department]")
    page.wait_for_function("() => window.caughtUp", timeout=15_000)
    page.wait_for_timeout(300)  # the step's own redraw, had it come
    assert page.is_visible("#step button[type=submit]")
    page.click("#step button[type=submit]")
    wait_state(page, "dispatched")
    assert not page.errors, page.errors


def test_duplicates_merge_in_one_click_and_the_reporter_sees_the_outcome(
        chromium, city: str, db: Engine, artifacts: Path) -> None:
    base = city
    first = report(base, "w-li", INSIDE_001, description="路面油污严重", photos=1)
    # Ten metres north of the first report.
    second = report(base, "w-zhao", (INSIDE_001[0], INSIDE_001[1] + 0.00009),
                    description="这里路面都是油污", photos=1)
    assert second["duplicates"][0]["case_id"] == first["id"]
    page = open_map(chromium, base, "disp-wang")
    page.click(f"#queue-list [data-case='{second['id']}']")
    page.wait_for_selector(f"#duplicates [data-dup='{first['id']}']")
    card = page.locator(f"#duplicates [data-dup='{first['id']}']")
    assert "10" in card.inner_text() or "9" in card.inner_text()  # metres apart
    # This case's photo beside the candidate's, both loaded.
    page.wait_for_function(f"""() => [...document.querySelectorAll(
        "#duplicates [data-dup='{first['id']}'] img.thumb")].filter(i => i.naturalWidth > 0)
        .length === 2""", timeout=10_000)
    page.screenshot(path=str(artifacts / "map_duplicates_1280.png"))
    card.locator(f"button[data-merge-into='{first['id']}']").click()  # one click
    page.wait_for_selector("#merged")
    assert second["public_no"] in page.inner_text("#merged")
    assert "并案" in page.inner_text("#history")
    # The primary goes round the loop and is closed …
    for user, action, body in (("disp-wang", "verify", {}), ("disp-wang", "register", {}),
                               ("disp-wang", "dispatch", {}), ("h-liu", "accept", {}),
                               ("h-liu", "handle", {}), ("h-liu", "feed_back", {}),
                               ("w-li", "check", {"check_result": "pass"}),
                               ("disp-wang", "close", {})):
        step(base, user, first["id"], action, **body)
    # … and the merged report's reporter sees it closed.
    reporter = open_map(chromium, base, "w-zhao")
    reporter.evaluate(f"window.gridcore.showCase({second['id']})")
    reporter.wait_for_selector("#outcome-state")
    assert reporter.get_attribute("#outcome-state", "data-state") == "closed"
    reporter.screenshot(path=str(artifacts / "map_merged_outcome_1280.png"))


def test_send_back_is_reproposed_in_the_dispatchers_queue(chromium, city: str,
                                                          artifacts: Path) -> None:
    base = city
    case = dispatched(base)
    page = open_map(chromium, base, "disp-wang")
    before = queue_count(page, "dispatch")
    step(base, "lead-chen", case["id"], "send_back", reason="不属于保洁队职责")
    page.wait_for_function(f"() => Number(document.querySelector('[data-count=dispatch]')"
                           f".textContent) === {before + 1}", timeout=15_000)  # no reload
    page.click("#buckets [data-bucket=dispatch]")
    page.click(f"#queue-list [data-case='{case['id']}']")
    wait_state(page, "sent_back")
    assert page.get_attribute("#proposal-dept", "data-code") == "D_STREET"
    assert "D_GRID" in page.inner_text(".proposal .refused")
    page.screenshot(path=str(artifacts / "map_sent_back_1280.png"))


def test_search_finds_classes_areas_and_words(chromium, city: str, artifacts: Path) -> None:
    base = city
    lamp = report(base, "w-li", LAMP, category="P0120", description="路灯不亮，晚上很黑")
    report(base, "w-zhao", INSIDE_002, description="井盖松动有响声")
    page = open_map(chromium, base, "disp-wang")
    page.fill("#search", "路灯")
    page.click("#search-form button")
    page.wait_for_selector("#search-results li[data-i]")
    first = page.locator("#search-results li[data-i]").first.inner_text()
    assert "类别" in first and "路灯" in first
    page.screenshot(path=str(artifacts / "map_search_1280.png"))
    page.locator("#search-results li[data-i]").first.click()
    page.wait_for_function("() => window.gridcore.queue.filters.category === 'P0120'")
    page.fill("#search", lamp["public_no"])
    page.click("#search-form button")
    page.wait_for_selector("#case-title")
    assert lamp["public_no"] in page.inner_text("#case-title")
    page.fill("#search", "东华门")
    page.click("#search-form button")
    page.wait_for_function("() => window.gridcore.queue.filters.area === '110101001'")


def test_clock_moved_warns_and_supervises_once(chromium, city: str, db: Engine,
                                               database_url: str, artifacts: Path) -> None:
    base = city
    case = dispatched(base)
    with db.connect() as conn:
        warn_at, due = conn.execute(text("SELECT warn_at, deadline_at FROM case_record "
                                         "WHERE id = :i"), {"i": case["id"]}).one()
    page = open_map(chromium, base, "disp-wang")
    # The toasts are kept as they come: each is shown when the sweep commits, seconds before
    # its process has exited (8-12 s for the whole command at host load 6), and goes after 8 s
    # — a wait for one on screen that starts when the command returns can begin too late.
    watch_toasts(page)
    no = case["public_no"]

    def supervise(at: datetime) -> None:  # the command line, with the clock moved
        subprocess.run([sys.executable, "-m", "gridcore.cli", "supervise", "--now",
                        at.isoformat()], cwd=REPO, check=True, capture_output=True,
                       env={**os.environ, "GRIDCORE_DATABASE_URL": database_url})

    supervise(warn_at + timedelta(minutes=1))
    wait_toast(page, "yellow", no)  # 预警, told at once
    supervise(warn_at + timedelta(minutes=2))  # nothing new
    supervise(due + timedelta(minutes=1))
    wait_toast(page, "red", no)  # 超期, and supervised
    page.screenshot(path=str(artifacts / "map_clock_toasts_1280.png"))
    supervise(due + timedelta(minutes=5))  # nothing new
    # A later event is the barrier: the stream sends events in order, so once it is here
    # anything the last sweep might have sent would be here too (a fixed wait proves nothing
    # on a slow machine).
    marker = report(base, "w-li", INSIDE_001)
    page.wait_for_function(f"() => window.gridcore.live.events.received"
                           f".some(e => e.case_id === {marker['id']})", timeout=15_000)
    kinds = page.evaluate(f"() => window.gridcore.live.events.received"
                          f".filter(e => e.case_id === {case['id']}).map(e => e.kind)")
    assert kinds.count("yellow") == 1 and kinds.count("red") == 1
    assert kinds.count("supervised") == 1
    assert toasts_shown(page, "yellow", no) == 1 and toasts_shown(page, "red", no) == 1
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_history WHERE case_id = :i AND "
                                 "action = 'supervise' AND actor = 'system'"),
                            {"i": case["id"]}).scalar() == 1


@pytest.mark.parametrize("viewport", [WIDE, TABLET], ids=["1280x800", "1024x768"])
def test_nothing_is_cut_off(chromium, city: str, viewport, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    base = city
    first = report(base, "w-li", INSIDE_001, description="路面油污严重，影响通行", photos=1)
    second = report(base, "w-zhao", (INSIDE_001[0], INSIDE_001[1] + 0.00009),
                    description="这里路面都是油污", photos=1)
    for action in ("verify", "register"):
        step(base, "disp-wang", first["id"], action)
    page = open_map(chromium, base, "disp-wang", viewport=viewport)
    page.evaluate(f"window.gridcore.showCase({second['id']})")
    page.wait_for_selector("#duplicates")
    # the drawer as it ends up: the suggestions' boxes filled in (they load after the case)
    page.wait_for_selector(f"article.case[data-case-id='{second['id']}'][data-intel=ready]",
                           timeout=30_000)
    size = f"{viewport['width']}x{viewport['height']}"
    page.screenshot(path=str(artifacts / f"map_case_{size}.png"))
    # Everything on screen lies inside the window: nothing sticks out to the right or below.
    overflow = page.evaluate("""() => {
        const W = innerWidth, H = innerHeight, out = [];
        for (const el of document.querySelectorAll('.topbar *, .queue *, .drawer *')) {
            const r = el.getBoundingClientRect();
            if (!r.width || !r.height || getComputedStyle(el).visibility === 'hidden') continue;
            const scroller = el.closest('.rows, .drawer, .dropdown');
            const name = el.tagName + '.' + el.className;
            if (r.right > W + 1) out.push(name + ' right ' + r.right);
            if (!scroller && r.bottom > H + 1) out.push(name + ' bottom');
        }
        return out.slice(0, 10);
    }""")
    assert overflow == []
    assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    page.evaluate(f"window.gridcore.showCase({first['id']})")
    page.wait_for_selector("#proposal")
    page.click(".actions button[data-action=dispatch]")
    page.screenshot(path=str(artifacts / f"map_dispatch_{size}.png"))


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_chrome_speaks_one_language(chromium, city: str, lang: str, artifacts: Path) -> None:
    from tests.support.language import foreign_words

    base = city
    first = report(base, "w-li", INSIDE_001, description="路面油污严重", photos=1)
    second = report(base, "w-zhao", (INSIDE_001[0], INSIDE_001[1] + 0.00009),
                    description="这里路面都是油污")
    for action in ("verify", "register"):
        step(base, "disp-wang", first["id"], action)
    page = open_map(chromium, base, "disp-wang", lang=lang)
    seen = foreign_words(page, lang)  # the queue
    page.evaluate(f"window.gridcore.showCase({second['id']})")  # duplicates, history
    page.wait_for_selector("#duplicates")
    seen += foreign_words(page, lang)
    page.evaluate(f"window.gridcore.showCase({first['id']})")  # the proposal, the form
    page.wait_for_selector("#proposal")
    page.click(".actions button[data-action=dispatch]")
    page.select_option("#step select[name=department]", "D_CITY")
    seen += foreign_words(page, lang)
    page.fill("#search", "油污")
    page.click("#search-form button")
    page.wait_for_selector("#search-results li[data-i]")
    seen += foreign_words(page, lang)
    page.click("#bell")
    seen += foreign_words(page, lang)
    page.screenshot(path=str(artifacts / f"map_language_{lang}.png"))
    assert sorted(set(seen)) == []
