"""The dispatcher's map (``/map``) on a phone, 390×844 with mobile emulation, in Chinese and
English, beside the same page at 1280×800: the queue's rows are whole on screen (not cut off, not
under the map or another panel), the 待定位 flag reads on its row, the map is one tap away and a
case opened from the queue is shown and closed back to the queue. Screenshots go to
test-artifacts/ (``map_phone_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.cases import INSIDE_001, INSIDE_002, LAMP
from tests.support.desk_browser import PHONE, WIDE, chromium, city, open_map, server
from tests.support.desk_city import hotline_without_place, report
from tests.support.language import foreign_words

__all__ = ["chromium", "city", "server"]  # the fixtures, from tests.support.desk_browser

UNLOCATED = {"zh-CN": "待定位", "en": "To locate"}
ROWS_WANTED = 5  # a phone's queue shows at least this many whole rows (the old layout: one)

# The rows of a list wholly on screen: inside the window, and the row itself is what a tap at
# each corner and at the middle hits (nothing over it, no scroller clipping it).
WHOLE_ROWS = """(list) => {
    const whole = [];
    for (const row of document.querySelectorAll(list + ' > .row')) {
        const r = row.getBoundingClientRect();
        if (!r.width || !r.height || r.top < 0 || r.left < 0 || r.bottom > innerHeight
            || r.right > innerWidth) continue;
        const at = [[r.left + 3, r.top + 3], [r.right - 3, r.top + 3], [r.left + 3, r.bottom - 3],
                    [r.right - 3, r.bottom - 3], [(r.left + r.right) / 2, (r.top + r.bottom) / 2]];
        if (at.every(([x, y]) => row.contains(document.elementFromPoint(x, y))))
            whole.push(Number(row.dataset.case || row.dataset.unlocated));
    }
    return whole;
}"""

# What a tap in the middle of an element hits, and the element's box.
SHOWN = """(sel) => {
    const el = document.querySelector(sel);
    if (!el) return null;
    const r = el.getBoundingClientRect();
    const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
    return {x: r.left, y: r.top, w: r.width, h: r.height, hit: !!hit && el.contains(hit)};
}"""

# A toast about a case on screen and on top (checked in one go: a toast goes after 8 s).
TOAST_SHOWN = """(no) => [...document.querySelectorAll('#toasts .toast')].some(el => {
    const r = el.getBoundingClientRect(), x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
    return el.textContent.includes(no) && r.top >= 0 && r.bottom <= innerHeight
        && el.contains(document.elementFromPoint(x, y));
})"""


def plant_queue(base: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Eight cases waiting for verification (待核实), one of them without a place."""
    words = ["路面有大片油污，车辆打滑", "井盖松动有响声", "人行道垃圾堆积", "绿化带杂物较多",
             "共享单车乱停放堵住盲道", "店外占道经营", "路灯不亮，晚上很黑"]
    points = [INSIDE_001, INSIDE_002, (INSIDE_001[0] + 0.001, INSIDE_001[1]),
              (INSIDE_002[0] + 0.001, INSIDE_002[1]), (INSIDE_001[0], INSIDE_001[1] + 0.002),
              (INSIDE_002[0], INSIDE_002[1] + 0.002), LAMP]
    cases = [report(base, "w-li" if p[0] < 116.405 else "w-zhao", p, description=w,
                    **({"category": "P0120"} if p == LAMP else {}))
             for w, p in zip(words, points, strict=True)]
    return cases, hotline_without_place(base)


def open_queue(chromium, base: str, viewport: dict[str, Any], lang: str  # type: ignore[no-untyped-def]
               ) -> tuple[Any, list[dict[str, Any]], dict[str, Any]]:
    """The map signed in as the dispatcher, its queue planted and drawn, the 待定位 list ready."""
    cases, unlocated = plant_queue(base)
    page = open_map(chromium, base, "disp-wang", viewport=viewport, lang=lang)
    page.wait_for_selector(f"#queue-list [data-case='{unlocated['id']}']")
    page.wait_for_selector("#unlocated[data-ready]", state="attached", timeout=15_000)
    return page, cases, unlocated


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_queue_is_whole_on_a_phone(chromium, city: str, lang: str,  # type: ignore[no-untyped-def]
                                       artifacts: Path) -> None:
    base = city
    page, cases, unlocated = open_queue(chromium, base, PHONE, lang)
    page.screenshot(path=str(artifacts / f"map_phone_queue_390_{lang}.png"))
    assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    assert sorted(set(foreign_words(page, lang))) == []  # the tabs speak the page's language

    # the queue: whole rows, not one squeezed between the map and the panels
    whole = page.evaluate(WHOLE_ROWS, "#queue-list")
    assert len(whole) >= ROWS_WANTED, (
        f"{len(whole)} whole queue rows at 390×844, want {ROWS_WANTED}: "
        f"{page.evaluate(SHOWN, '#queue-list')}")
    # the case without a place: its row carries the 待定位 flag, whole and on one line
    flagged = f"#queue-list [data-case='{unlocated['id']}']"
    page.locator(flagged).scroll_into_view_if_needed()
    flag = page.evaluate(SHOWN, f"{flagged} .flag.unlocated")
    assert flag and flag["hit"], flag
    assert page.inner_text(f"{flagged} .flag.unlocated") == UNLOCATED[lang]
    height = page.evaluate("(sel) => { const f = document.querySelector(sel); return ["
                           "f.getBoundingClientRect().height, parseFloat(getComputedStyle(f)"
                           ".lineHeight) || 16]; }", f"{flagged} .flag.unlocated")
    assert height[0] < 1.5 * height[1], height  # one line, not wrapped
    page.screenshot(path=str(artifacts / f"map_phone_flag_390_{lang}.png"))
    # the 待定位 list below the queue is whole too
    assert unlocated["id"] in page.evaluate(WHOLE_ROWS, "#unlocated-list")
    page.locator("#queue-list .row").first.scroll_into_view_if_needed()
    # the search's hits (as they come while typing) fit the screen's width
    page.fill("#search", "油污")
    page.wait_for_selector("#search-results li[data-i]")
    hits = page.evaluate(SHOWN, "#search-results")
    assert hits["hit"] and hits["x"] >= 0 and hits["x"] + hits["w"] <= PHONE["width"], hits
    page.tap("#unlocated h4")  # a tap elsewhere folds them away
    page.wait_for_selector("#search-results", state="hidden")

    # a new report's toast floats over the queue (its box lives on the map's side)
    fresh = report(base, "w-li", (INSIDE_001[0] + 0.002, INSIDE_001[1]), description="垃圾桶满溢")
    page.wait_for_function(TOAST_SHOWN, arg=fresh["public_no"], timeout=15_000)
    page.screenshot(path=str(artifacts / f"map_phone_toast_390_{lang}.png"))
    page.tap("#bell")  # the notifications too, over the queue
    page.wait_for_selector("#notices li[data-case]")
    notices = page.evaluate(SHOWN, "#notices h4")
    assert notices["hit"] and notices["y"] >= 0, notices
    page.screenshot(path=str(artifacts / f"map_phone_notices_390_{lang}.png"))
    page.tap("#bell")
    page.wait_for_selector("#notices", state="hidden")

    # the map: one tap away, and then most of the screen
    page.tap("#view-map")
    page.wait_for_function("() => document.getElementById('view-map')"
                           ".getAttribute('aria-selected') === 'true'")
    page.wait_for_function("() => window.gridcore.map.areTilesLoaded()", timeout=30_000)
    shown = page.evaluate(SHOWN, "#map")
    assert shown["hit"] and shown["w"] >= PHONE["width"] - 2, shown
    assert shown["h"] >= PHONE["height"] * 0.6, shown
    page.screenshot(path=str(artifacts / f"map_phone_map_390_{lang}.png"))
    page.tap("#view-queue")
    assert len(page.evaluate(WHOLE_ROWS, "#queue-list")) >= ROWS_WANTED

    # a row opens its case over the whole screen; closing it comes back to the queue
    first = cases[0]
    page.tap(f"#queue-list [data-case='{first['id']}']")
    page.wait_for_function("() => document.getElementById('case-title')")
    title = page.evaluate(SHOWN, "#case-title")
    assert title["hit"], title
    assert first["public_no"] in page.inner_text("#case-title")
    steps = page.eval_on_selector_all("#details .actions button", "bs => bs.map(b => b.innerText)")
    assert steps, "no step buttons"
    if lang == "en":  # a step's button begins with a capital ('verify', 'void' did)
        assert [s for s in steps if s[:1].islower()] == [], steps
    page.screenshot(path=str(artifacts / f"map_phone_case_390_{lang}.png"))
    page.tap("#drawer-close")
    page.wait_for_function("() => document.getElementById('drawer').hidden")
    assert len(page.evaluate(WHOLE_ROWS, "#queue-list")) >= ROWS_WANTED

    # a 待定位 case: its panel leaves the top of the map free, where a tap picks the place
    page.tap(f"#unlocated-list [data-unlocated='{unlocated['id']}']")
    page.wait_for_selector("#locate-panel")
    assert page.evaluate(SHOWN, "#locate-address")["hit"]
    free = page.evaluate(SHOWN, "#map canvas")
    drawer = page.evaluate(SHOWN, "#drawer")
    assert drawer["y"] - free["y"] >= 250, (free, drawer)  # map to tap on above the panel
    page.touchscreen.tap(PHONE["width"] / 2, (free["y"] + drawer["y"]) / 2)
    page.wait_for_selector("#pick-marker")
    assert not page.is_disabled("#locate-go")
    page.screenshot(path=str(artifacts / f"map_phone_locate_390_{lang}.png"))
    page.tap("#locate-back")
    page.wait_for_function("() => document.getElementById('drawer').hidden")
    assert page.get_attribute("#view-queue", "aria-selected") == "true"
    assert not page.errors, page.errors


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_queue_beside_the_map_at_1280(chromium, city: str, lang: str,  # type: ignore[no-untyped-def]
                                          artifacts: Path) -> None:
    """The wide page as it was: the queue on the left and the map beside it, both whole."""
    base = city
    page, _, unlocated = open_queue(chromium, base, WIDE, lang)
    page.screenshot(path=str(artifacts / f"map_wide_queue_1280_{lang}.png"))
    assert page.is_hidden("#views")  # no tabs: there is room for both
    assert len(page.evaluate(WHOLE_ROWS, "#queue-list")) >= ROWS_WANTED  # 5 (en), 6 (zh) before
    queue, shown = page.evaluate(SHOWN, "#queue"), page.evaluate(SHOWN, "#map")
    assert shown["hit"] and shown["x"] >= queue["x"] + queue["w"] - 1, (queue, shown)
    assert shown["w"] >= 900 and shown["h"] >= 700, shown
    assert unlocated["id"] in page.evaluate(WHOLE_ROWS, "#unlocated-list")
    assert not page.errors, page.errors
