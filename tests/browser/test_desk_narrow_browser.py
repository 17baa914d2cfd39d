"""The desk's pages on a phone and the map's queue after its own steps (session 9's polish of
what the last walk left): the top bar of ``/desk`` and ``/map`` stays one line at 390×844 in
Chinese and English (long names cut with an ellipsis, the whole in their title); the workbench's
empty case pane points where the worklist is (above on a phone, on the left wider); the map's
filters begin with a capital in English; and the map's queue counts follow a step the page
itself took, without waiting for the live stream. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cases import INSIDE_001, INSIDE_002, LAMP
from tests.support.desk_browser import (
    PHONE,
    WIDE,
    chromium,
    city,
    open_desk,
    open_map,
    server,
    wait_state,
)
from tests.support.desk_city import dispatched, report, step

__all__ = ["chromium", "city", "server"]  # the fixtures, from tests.support.desk_browser

# The top bar's height, and its visible children that overflow the window or each other's line.
BAR = """() => {
    const bar = document.querySelector('.topbar'), b = bar.getBoundingClientRect();
    const shown = [...bar.querySelectorAll('*')].filter((e) => e.getClientRects().length
        && getComputedStyle(e).visibility !== 'hidden');
    const outside = shown.filter((e) => { const r = e.getBoundingClientRect();
        return r.width > 1
            && (r.right > innerWidth + 1 || r.left < -1 || r.bottom > b.bottom + 1); })
        .map((e) => e.id || e.className || e.tagName);
    const me = document.getElementById('me');
    return {height: b.height, outside, me: me.textContent, meTitle: me.title,
            meCut: me.scrollWidth > me.clientWidth};
}"""


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("path", ["/desk", "/map"])
def test_the_top_bar_is_one_line_on_a_phone(chromium, city: str, path: str, lang: str,  # type: ignore[no-untyped-def]
                                            artifacts: Path) -> None:
    """At 390 px signed in, the top bar took two to four lines (the department's long name, the
    user and role, 'live', 'Notifications', the language switch): 97-140 px of a 844 px screen."""
    base = city
    opened = open_desk(chromium, base, "lead-chen", viewport=PHONE, lang=lang) if path == "/desk" \
        else open_map(chromium, base, "disp-wang", viewport=PHONE, lang=lang)
    bar = opened.evaluate(BAR)
    name = path.strip("/")
    opened.screenshot(path=str(artifacts / f"{name}_topbar_390_{lang}.png"))
    assert bar["height"] <= 52, bar
    assert bar["outside"] == [], bar
    assert bar["meTitle"] == bar["me"], bar  # whatever the ellipsis hides, the title says
    if path == "/desk":
        dept = opened.get_attribute("#dept", "title") or ""
        assert opened.inner_text("#dept") in dept, dept
        # the empty case pane: the worklist is above on a phone, not on the left
        hint = opened.inner_text("#case .hint")
        assert ("上方" in hint) if lang == "zh-CN" else ("above" in hint), hint
        assert "左侧" not in hint and "left" not in hint, hint
    # the notifications are still one tap away
    opened.click("#bell")
    opened.wait_for_selector("#notices:not([hidden])")


def test_the_desk_at_1280_still_points_left(chromium, city: str) -> None:
    page = open_desk(chromium, city, "lead-chen", viewport=WIDE)
    assert page.inner_text("#case .hint") == "请从左侧选择一件案卷。"
    height = "() => document.querySelector('.topbar').getBoundingClientRect().height"
    assert page.evaluate(height) <= 48
    assert page.is_visible(".topbar .brand") and page.is_visible("#live-text")


def test_the_map_filters_begin_with_a_capital_in_english(chromium, city: str,  # type: ignore[no-untyped-def]
                                                         artifacts: Path) -> None:
    """'all classes', 'all departments', 'all clocks', 'on time', 'overdue' and the class names
    ('E0103 dirty road') read in lower case among the English page's capitalised labels."""
    page = open_map(chromium, city, "disp-wang", viewport=WIDE, lang="en")
    options = page.evaluate("""() => ['f-class', 'f-dept', 'f-colour'].flatMap((id) =>
        [...document.getElementById(id).options].map((o, i) => ({id, i, text: o.textContent})))""")
    chrome = [o["text"] for o in options if o["i"] == 0 or o["id"] == "f-colour"]
    assert chrome == ["All classes", "All departments", "All clocks", "On time", "≥ 80 %",
                      "Overdue"], chrome
    classes = [o["text"].split(" ", 1)[1] for o in options if o["id"] == "f-class" and o["i"]]
    assert classes and [c for c in classes if c[:1].islower()] == [], classes
    # the forecast layer's level choice (未诉先办) is a list of labels too
    levels = page.evaluate("() => [...document.querySelectorAll('#forecast-level option')]"
                           ".map((o) => o.textContent)")
    assert levels == ["Community", "Grid"], levels
    page.screenshot(path=str(artifacts / "map_filters_en_1280.png"))


def _counts(page: Any) -> dict[str, str]:
    return dict(page.evaluate("() => [...document.querySelectorAll('#buckets [data-count]')]"
                              ".map((e) => [e.dataset.count, e.textContent])"))


def test_the_queue_counts_follow_the_pages_own_step(chromium, city: str) -> None:
    """A step taken on the map is counted in the buckets as soon as the server took it: the
    page reloads its queue itself, not only when the live stream (cut here) tells it, and not
    after the map's layer-version poll (held here: the counts waited for it)."""
    base = city
    first = report(base, "w-li", INSIDE_001, description="路面油污")
    report(base, "w-zhao", INSIDE_002, description="垃圾满溢")
    page = open_map(chromium, base, "disp-wang", viewport=WIDE)
    page.wait_for_selector(f"#queue-list [data-case='{first['id']}']")
    page.context.route("**/events*", lambda route: route.abort())  # no live stream from now on
    page.evaluate("() => window.gridcore.live.events.restart()")
    before = _counts(page)
    page.click(f"#queue-list [data-case='{first['id']}']")
    page.wait_for_selector(".actions button[data-action=verify]")
    clicked = time.monotonic()
    held: list[Any] = []
    # a slow layer poll: it does not answer while the counts are watched
    page.context.route("**/map/versions", lambda r: held.append(r))
    page.click(".actions button[data-action=verify]")
    page.wait_for_function("(n) => document.querySelector('[data-count=verify]').textContent "
                           "=== String(n)", arg=int(before["verify"]) - 1, timeout=10_000)
    took = time.monotonic() - clicked
    after = _counts(page)
    assert int(after["register"]) == int(before["register"]) + 1, (before, after)
    assert took < 2.0, f"the counts followed the step after {took:.1f} s"
    wait_state(page, "verified", settled=False)  # the case shows its new state (polls held)
    page.context.unroute("**/map/versions")
    for route in held:
        route.continue_()


def test_a_case_picked_on_a_phone_is_scrolled_to(chromium, city: str, artifacts: Path) -> None:
    """On a phone the case is drawn below the worklist: a tap on a row brings it on screen (it
    was drawn out of sight, under the worklist, the team and the coordination list)."""
    base = city
    case = dispatched(base, description="人行道上有大片油污")
    page = open_desk(chromium, base, "lead-chen", viewport=PHONE)
    page.tap(f"#task-list [data-case='{case['id']}']")
    wait_state(page, "dispatched")
    page.wait_for_function("() => { const r = document.querySelector('article.case')"
                           ".getBoundingClientRect(); "
                           "return r.top >= 0 && r.top < innerHeight / 3; }", timeout=5_000)
    page.screenshot(path=str(artifacts / "desk_case_picked_390.png"))


def test_the_case_facts_begin_with_a_capital_in_english(chromium, city: str) -> None:
    """The facts of an accepted case read 'Class', 'Source', … and 'handler' (the word of the
    history's sentences); as a label it is 'Handler'."""
    base = city
    case = dispatched(base, description="路灯不亮")
    step(base, "h-liu", case["id"], "accept")
    page = open_desk(chromium, base, "lead-chen", viewport=WIDE, lang="en")
    page.click("#tabs [data-tab=handle]")
    page.click(f"#task-list [data-case='{case['id']}']")
    wait_state(page, "accepted")
    labels = page.eval_on_selector_all("dl.facts dt", "els => els.map((e) => e.innerText)")
    assert "Handler" in labels and [x for x in labels if x[:1].islower()] == [], labels


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_case_names_its_city_part_and_the_top_bar_reads_as_labels(  # type: ignore[no-untyped-def]
        chromium, city: str, lang: str, artifacts: Path) -> None:
    """The facts showed the part as a bare code ('部件 1101010120000001'): now its class's
    name and its own, the code beside them. In English the top bar read 'live' and
    'lead-chen · department handler': as labels, 'Live' and 'Department handler'."""
    base = city
    case = report(base, "w-li", (LAMP[0] + 0.00005, LAMP[1]), category="P0120",
                  description="路灯不亮")
    assert case["part_code"] == "1101010120000001"
    step(base, "disp-wang", case["id"], "verify")
    step(base, "disp-wang", case["id"], "register")
    step(base, "disp-wang", case["id"], "dispatch", department="D_GRID",
         reason="路灯维护公司本周停工")
    page = open_desk(chromium, base, "lead-chen", viewport=WIDE, lang=lang)
    page.click(f"#task-list [data-case='{case['id']}']")
    wait_state(page, "dispatched")
    part = page.inner_text("#case-part")
    name = "路灯" if lang == "zh-CN" else "Street lamp"
    assert part == f"{name} · 路灯 1 1101010120000001", part
    page.wait_for_selector("#live[data-state=live]", timeout=15_000)
    live, me = page.inner_text("#live-text"), page.inner_text("#me")
    if lang == "en":
        assert (live, me) == ("Live", "lead-chen · Department handler"), (live, me)
    else:
        assert (live, me) == ("实时", "lead-chen · 部门处置人员"), (live, me)
    page.screenshot(path=str(artifacts / f"desk_case_part_{lang}.png"))
    assert not page.errors, page.errors


def test_lists_are_joined_as_english_writes_them(chromium, city: str,  # type: ignore[no-untyped-def]
                                                tmp_path: Path) -> None:
    """The photos chosen for a step were listed with the Chinese '、' in English too
    ('2 chosen: a.png、b.png'): the separator comes from the catalogue."""
    from tests.support.cases import png_bytes

    base = city
    case = dispatched(base, description="路面油污")
    step(base, "h-liu", case["id"], "accept")
    files = []
    for name in ("before.png", "after.png"):
        (tmp_path / name).write_bytes(png_bytes(64))
        files.append(str(tmp_path / name))
    page = open_desk(chromium, base, "lead-chen", viewport=WIDE, lang="en")
    page.click("#tabs [data-tab=handle]")
    page.click(f"#task-list [data-case='{case['id']}']")
    wait_state(page, "accepted")
    page.click(".actions button[data-action=handle]")
    page.set_input_files("#step input[type=file]", files)
    chosen = page.inner_text("#step .chosen")
    assert "before.png, after.png" in chosen and "、" not in chosen, chosen
    assert not page.errors, page.errors


def test_a_case_sent_back_keeps_its_class_name(chromium, city: str) -> None:
    """After a send-back the case is no longer the department's and is drawn from the step's
    answer: its class read 'E0103 E0103' (no names in the answer); the names shown stay."""
    base = city
    case = dispatched(base, description="路面油污")
    page = open_desk(chromium, base, "lead-chen", viewport=WIDE)
    page.click(f"#task-list [data-case='{case['id']}']")
    wait_state(page, "dispatched")
    shown = page.inner_text("dl.facts dd")
    page.click(".actions button[data-action=send_back]")
    page.fill("#step textarea", "不属于本部门职责")
    page.click("#step button[type=submit]")
    wait_state(page, "sent_back")
    page.wait_for_selector("#not-ours")
    assert page.inner_text("dl.facts dd") == shown and shown != "E0103 E0103", shown


# Whether two boxes overlap, from the page: the toast over the case's title, say.
OVERLAP = """([a, b]) => { const r = document.querySelector(a)?.getBoundingClientRect(),
    s = document.querySelector(b)?.getBoundingClientRect();
    if (!r || !s) return null;
    return !(r.right <= s.left || s.right <= r.left || r.bottom <= s.top || s.bottom <= r.top); }"""


def test_on_a_phone_the_bar_stays_and_a_toast_leaves_the_title_free(chromium, city: str,
                                                                      artifacts: Path) -> None:
    """At 390 px the desk scrolls as one page: its top bar (bell, sign-out) stays on screen,
    and the toast after a send-back rises from the bottom — it sat over the case's title."""
    base = city
    case = dispatched(base, description="人行道上有大片油污")
    page = open_desk(chromium, base, "lead-chen", viewport=PHONE)
    page.tap(f"#task-list [data-case='{case['id']}']")
    wait_state(page, "dispatched")
    assert page.evaluate("() => document.querySelector('.topbar').getBoundingClientRect().top") == 0
    assert page.evaluate("() => scrollY") > 0  # the case was scrolled to: the bar stayed
    page.click(".actions button[data-action=send_back]")
    page.fill("#step textarea", "不属于本部门职责")
    page.click("#step button[type=submit]")
    wait_state(page, "sent_back")
    page.wait_for_selector("#toasts .toast")
    page.screenshot(path=str(artifacts / "desk_sent_back_toast_390.png"))
    assert page.evaluate(OVERLAP, ["#toasts .toast", "article.case h3"]) is False
    toast = page.evaluate("() => document.querySelector('#toasts .toast').getBoundingClientRect()"
                          ".bottom")
    assert toast <= PHONE["height"]


@pytest.mark.parametrize("path", ["/desk", "/map"])
def test_queue_rows_begin_with_a_capital_in_english(chromium, city: str, path: str) -> None:
    """A row's class and state stand alone as labels: 'Street lamp', 'Dispatched' ('street
    lamp dispatched' read as one phrase)."""
    base = city
    case = report(base, "w-li", INSIDE_001, description="路灯不亮")
    if path == "/desk":
        for action in ("verify", "register", "dispatch"):
            step(base, "disp-wang", case["id"], action)
        page = open_desk(chromium, base, "lead-chen", viewport=PHONE, lang="en")
        rows = "#task-list"
    else:  # reported: in the queue's first bucket (待核实)
        page = open_map(chromium, base, "disp-wang", viewport=PHONE, lang="en")
        rows = "#queue-list"
    page.wait_for_selector(f"{rows} [data-case='{case['id']}'] .cls")
    row = f"{rows} [data-case='{case['id']}']"
    for part in (".cls", ".state"):
        shown = page.inner_text(f"{row} {part}")
        assert shown[:1].isupper(), (part, shown)
