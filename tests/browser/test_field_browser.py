"""The grid worker's phone app (网格通, ``/m/``) in headless Chromium with mobile emulation:
390 × 844, touch, geolocation granted and set. One live server and one browser for the module;
each test is a new phone (a fresh browser context: no service worker, no IndexedDB yet).

What the issue asks, as a worker would do it: install criteria and an offline reload; a report
filed offline with a photo, the app closed and reopened, sent once online — also when the
network drops after the server got it; where am I offline; verify and check from the phone; an
access token that expired while reports were queued; a revoked device session. Screenshots of
every screen go to ``test-artifacts/field_*.png``.
"""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from layers.security.users import add_user
from tests.support.browser import chromium_browser
from tests.support.map_planted import GRID_CODES, grid_square, plant
from tests.support.thread_server import live_server

PASSWORD = "a-long-password-1"
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0 Mobile Safari/537.36")
DESK = {"X-Role": "dispatcher", "X-Actor": "desk-1"}
DEPT = {"X-Role": "department_handler", "X-Actor": "dept-1"}


def centre(i: int) -> dict[str, float]:
    x0, y0, x1, y1 = grid_square(i)
    return {"longitude": (x0 + x1) / 2, "latitude": (y0 + y1) / 2, "accuracy": 12}


@pytest.fixture(scope="module")
def server(engine: Engine) -> Iterator[tuple[Any, str]]:
    # positions on duty every second (the real default is 15 s): a patrol test in seconds
    old = os.environ.get("GRIDCORE_FIELD_PATROL_INTERVAL_S")
    os.environ["GRIDCORE_FIELD_PATROL_INTERVAL_S"] = "1"
    try:
        with live_server(engine) as url, chromium_browser() as chromium:
            yield chromium, url
    finally:
        if old is None:
            os.environ.pop("GRIDCORE_FIELD_PATROL_INTERVAL_S", None)
        else:
            os.environ["GRIDCORE_FIELD_PATROL_INTERVAL_S"] = old


@pytest.fixture
def city(db: Engine) -> Engine:
    """The planted block of six grids; wang works the first three (a grid worker with grid
    areas), zhao reports elsewhere."""
    plant(db, cases=False)
    add_user(db, "wang", PASSWORD, "grid_worker", areas=tuple(GRID_CODES[:3]),
             display_name="王芳")
    return db


# A page opened or reloaded in an offline context has been seen (under load) to believe it
# is online: turning the network on then fires no 'online' event, and the outbox sends at its
# next 15 s timer once its back-off (5 s, 10 s, … per failed attempt) has run out — still
# sent, by the path a phone without Background Sync relies on, but later than 30 s allowed.
SENT_AFTER_REOPEN = 60_000


class Phone:
    """One phone: a browser context with mobile emulation, and what the test watches."""

    def __init__(self, chromium: Any, url: str, artifacts: Path, user_agent: str = ANDROID,
                 init_script: str | None = None) -> None:
        self.url, self.artifacts = url, artifacts
        self.context = chromium.new_context(
            viewport={"width": 390, "height": 844}, device_scale_factor=1, is_mobile=True,
            has_touch=True, user_agent=user_agent, locale="zh-CN", timezone_id="Asia/Shanghai",
            geolocation=centre(0), permissions=["geolocation"])
        if init_script:
            self.context.add_init_script(init_script)
        self.errors: list[str] = []
        self.page = self.open()

    def open(self) -> Any:
        page = self.context.new_page()
        page.on("pageerror", lambda e: self.errors.append(f"{e} {getattr(e, 'stack', '')}"))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                and "Content Security Policy" in m.text else None)
        return page

    def go(self, hash_: str = "") -> None:
        self.page.goto(f"{self.url}/m/{hash_}")
        self.ready()

    def reload(self) -> None:
        self.page.reload()
        self.ready()

    def ready(self) -> None:
        self.page.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30_000)

    def sign_in(self, user: str = "wang", password: str = PASSWORD) -> None:
        self.page.fill("#username", user)
        self.page.fill("#password", password)
        self.page.click("#signin-button")
        self.page.wait_for_selector("[data-screen=where] #here-code", timeout=30_000)
        self.page.wait_for_function("() => navigator.serviceWorker.controller !== null",
                                    timeout=30_000)
        self.wait_text("#area-note", "6" if user != "wang" else "3")

    def wait_text(self, selector: str, pattern: str, timeout: float = 30_000) -> None:
        self.page.wait_for_function(
            "([s, p]) => { const e = document.querySelector(s); "
            "return !!e && new RegExp(p).test(e.textContent); }", arg=[selector, pattern],
            timeout=timeout)

    def tab(self, name: str) -> None:
        self.page.click(f"#tab-{name}")
        self.page.wait_for_selector(f"#view[data-screen={name}]")

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.artifacts / f"field_{name}.png"))

    def offline(self, off: bool = True) -> None:
        self.context.set_offline(off)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def phone(server, city, artifacts: Path) -> Iterator[Phone]:  # type: ignore[no-untyped-def]
    chromium, url = server
    device = Phone(chromium, url, artifacts)
    try:
        yield device
        assert not device.errors, device.errors
    finally:
        device.close()


def jpeg(path: Path, size: tuple[int, int] = (4000, 3000)) -> Path:
    """A camera-like JPEG: noise, so that it does not compress to nothing."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    small = rng.integers(0, 255, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.BILINEAR)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=92)
    path.write_bytes(buf.getvalue())
    return path


def cases(db: Engine) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(text(
            "SELECT c.id, c.public_no, c.filed_by, c.source, c.reporter, c.grid_code, "
            "c.category_key, (SELECT count(*) FROM case_photo p WHERE p.case_id = c.id) AS "
            "photos, c.intake->'fix' AS fix FROM case_record c ORDER BY c.id")).all()


def fill_report(phone: Phone, photo: Path | None, search: str = "道路", key: str = "E0103",
                description: str = "路面有大片油污", wait_for: str = "110101001001") -> None:
    page = phone.page
    phone.tab("report")
    page.wait_for_selector("#report-where")
    phone.wait_text("#report-where", wait_for)
    page.click("#category-button")
    page.fill("#cat-search", search)
    page.wait_for_selector(f"#cat-list [data-key={key}]")
    phone.shot("category_picker")
    page.click(f"#cat-list [data-key={key}]")
    page.fill("#description", description)
    if photo is not None:
        page.set_input_files("#photo-input", str(photo))
        page.wait_for_selector("#photo-thumbs figure")


def outbox_states(phone: Phone) -> list[str]:
    return phone.page.eval_on_selector_all("#outbox-list li",
                                           "els => els.map(e => e.dataset.state)")


# -- install criteria --------------------------------------------------------------------------
def test_installable_and_opens_offline(phone: Phone) -> None:
    manifest = httpx.get(f"{phone.url}/m/manifest.webmanifest").json()
    assert manifest["name"].startswith("网格通") and manifest["short_name"] == "网格通"
    assert manifest["start_url"] == "/m/" and manifest["scope"] == "/m/"
    assert manifest["display"] == "standalone" and manifest["theme_color"]
    sizes = {(i["sizes"], i["purpose"]) for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        assert httpx.get(f"{phone.url}{icon['src']}").headers["content-type"] == "image/png"
    phone.go()
    page = phone.page
    assert page.get_attribute("link[rel=manifest]", "href") == "/m/manifest.webmanifest"
    page.wait_for_selector("#signin")
    phone.shot("signin")
    scope = page.evaluate("() => navigator.serviceWorker.ready.then(r => r.scope)")
    assert scope == f"{phone.url}/m/"
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=30_000)
    # offline, the page and the app come from the service worker's cache
    phone.offline()
    phone.reload()
    assert page.is_visible("#signin")
    # the header follows navigator.onLine and its events: a page reloaded in an offline
    # context (the emulation) has been seen to start out believing it is online
    phone.wait_text("#net", "^离线$")
    phone.offline(False)
    phone.sign_in()
    phone.offline()
    phone.reload()
    page.wait_for_selector("[data-screen=where] #here-code")
    phone.wait_text("#here-code", GRID_CODES[0][:12])
    # every control a thumb taps is at least 44 px high
    small = page.evaluate("""() => [...document.querySelectorAll(
        'button, a.button, #tabs a, input, textarea, label.button')]
        .filter(e => e.offsetParent && e.getBoundingClientRect().height < 44)
        .map(e => e.id || e.className || e.tagName)""")
    assert small == []


# -- the offline report, closed and reopened, sent once ----------------------------------------
def test_offline_report_survives_closing_and_is_filed_once(phone: Phone, city: Engine,
                                                            tmp_path: Path) -> None:
    phone.go()
    phone.sign_in()
    phone.shot("where")
    phone.offline()
    fill_report(phone, jpeg(tmp_path / "camera.jpg"))
    phone.shot("report")
    phone.page.click("#report-submit")
    phone.page.wait_for_selector("#outbox-list li[data-state=waiting]")
    phone.shot("outbox_waiting")
    phone.wait_text("#queued", "^待发 1$")  # the header counts after the list is drawn
    # the app is closed and opened again, still offline
    phone.page.close()
    phone.page = phone.open()
    phone.go("#/mine")
    phone.page.wait_for_selector("#outbox-list li[data-state=waiting]")
    assert cases(city) == []
    phone.offline(False)
    phone.page.wait_for_selector("#outbox-list li[data-state=done]", timeout=SENT_AFTER_REOPEN)
    filed = cases(city)
    assert len(filed) == 1
    case = filed[0]
    assert (case.filed_by, case.source, case.category_key, case.photos) == (
        "wang", "grid_worker", "E0103", 1)
    assert case.fix["accuracy_m"] == 12
    assert case.public_no in phone.page.inner_text("#outbox-list li")
    phone.page.wait_for_selector(f"#report-list li[data-id='{case.id}']")
    phone.shot("outbox_filed")
    with city.connect() as conn:
        size = conn.execute(text("SELECT size_bytes FROM case_photo")).scalar()
    assert size <= 400_000


def test_network_dropping_mid_upload_still_makes_one_case(phone: Phone, city: Engine,
                                                          tmp_path: Path) -> None:
    answers: list[int] = []

    def drop_twice(route: Any) -> None:
        response = route.fetch()  # the server receives the report and answers…
        answers.append(response.status)
        if len(answers) <= 2:
            route.abort("connectionreset")  # …and the phone never hears it
        else:
            route.fulfill(response=response)

    phone.go()
    phone.sign_in()
    phone.context.route(re.compile(r".*/cases$"), drop_twice)
    fill_report(phone, jpeg(tmp_path / "camera.jpg", (1200, 900)))
    phone.page.click("#report-submit")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "done" not in (states := outbox_states(phone)):
        if "sending" not in states:  # offline now would cut the attempt under way: a 4th send
            phone.offline()  # back online: the app sends at once instead of after its back-off
            phone.offline(False)
        time.sleep(1.5)
    assert outbox_states(phone) == ["done"]
    assert answers[0] == 201 and answers[1:] == [200] * (len(answers) - 1) and len(answers) == 3
    filed = cases(city)
    assert len(filed) == 1 and filed[0].photos == 1
    assert filed[0].public_no in phone.page.inner_text("#outbox-list li")


def test_refused_report_shows_the_reason_to_fix(phone: Phone, city: Engine) -> None:
    phone.context.set_geolocation(centre(4) | {"longitude": 24.99})  # outside every grid
    phone.go()
    phone.sign_in()
    phone.tab("report")
    phone.wait_text("#report-where", "不在我的网格内")
    fill_report(phone, None, wait_for="不在")
    phone.page.click("#report-submit")
    phone.page.wait_for_selector("#outbox-list li[data-state=refused]")
    reason = phone.page.inner_text("#outbox-list li .reason")
    # what to do, in Chinese; the server's words (English: it has no translation for this
    # refusal) are not shown under it (they were: "…outside every unit grid…" in small type)
    assert "不在任何单元网格内（最近的网格 110101001001006）" in reason and "图钉" in reason
    assert "outside" not in phone.page.inner_text("#outbox-list li"), reason
    assert phone.page.query_selector("#outbox-list li .reason .detail") is None
    phone.shot("outbox_refused")
    phone.page.click("#outbox-list li a.button")  # 修改: the same, once
    phone.page.wait_for_selector("#refused-reason")
    assert "outside" not in phone.page.inner_text("#refused-reason")
    assert cases(city) == []


def test_a_double_tap_queues_one_report_and_one_step(phone: Phone, city: Engine,
                                                     tmp_path: Path) -> None:
    """A worker taps 提交 twice (a slow phone, a glove): one report, one step. Each queued
    item carries its own idempotency key, so a second item was a second case, and a second
    step was refused and stayed in the outbox as 被拒."""
    verify = _desk_case(phone.url, centre(1))
    phone.go()
    phone.sign_in()
    fill_report(phone, jpeg(tmp_path / "camera.jpg", (1200, 900)))
    phone.page.dblclick("#report-submit")
    phone.page.wait_for_selector("#outbox-list li[data-state=done]", timeout=30_000)
    phone.tab("tasks")
    page = phone.page
    page.wait_for_selector(f".task[data-id='{verify}']")
    page.click(f".task[data-id='{verify}']")
    page.wait_for_selector("#step-form")
    page.click("[data-choice=verify]")
    page.dblclick("#step-submit")
    _await_state(city, verify, "verified")
    phone.tab("mine")
    page.wait_for_selector("#outbox-list li[data-kind=step][data-state=done]", timeout=30_000)
    time.sleep(1)  # a second item, had one been queued, is on the list by now
    phone.shot("double_tap")
    assert sorted(outbox_states(phone)) == ["done", "done"]
    assert [c.filed_by for c in cases(city)].count("wang") == 1
    with city.connect() as conn:
        verified = conn.execute(text("SELECT count(*) FROM case_history WHERE case_id = :i "
                                     "AND action = 'verify'"), {"i": verify}).scalar()
    assert verified == 1


def test_a_refused_field_is_named_as_the_form_names_it(phone: Phone, city: Engine) -> None:
    """A description pasted with a control character is refused: the worker is told which
    field to fix in the form's words (问题描述), not the API's (description)."""
    phone.go()
    phone.sign_in()
    fill_report(phone, None, description="路面有油污\u0007")
    phone.page.click("#report-submit")
    phone.page.wait_for_selector("#outbox-list li[data-state=refused]")
    reason = phone.page.inner_text("#outbox-list li .reason")
    phone.shot("outbox_refused_field")
    assert "有内容填写不正确（问题描述）" in reason, reason
    phone.page.click("#outbox-list li a.button")  # 修改: the form says it again, as the list
    phone.page.wait_for_selector("#refused-reason")
    assert "有内容填写不正确（问题描述）" in phone.page.inner_text("#refused-reason")
    phone.shot("report_fix")
    assert cases(city) == []


def test_the_photo_field_says_its_limit_and_stops_at_it(phone: Phone, city: Engine,
                                                         tmp_path: Path) -> None:
    """Seven photos chosen at once: six are taken, the worker is told why, and the camera
    button goes until one is removed (the form took all seven, and the server refused the
    report with its 422 "一次最多上传 6 张照片" only once it was sent)."""
    photo = jpeg(tmp_path / "camera.jpg", (800, 600))
    phone.go()
    phone.sign_in()
    fill_report(phone, None)
    page = phone.page
    assert "最多 6 张" in page.inner_text("#photo-limit")
    page.set_input_files("#photo-input", [str(photo)] * 7)
    page.wait_for_function("() => document.querySelectorAll('#photo-thumbs figure').length >= 6")
    time.sleep(0.5)  # a seventh, had it been taken, is drawn by now
    assert page.locator("#photo-thumbs figure").count() == 6
    assert "已达上限" in page.inner_text("#photo-limit")
    assert page.locator("#photo-thumbs .photo-add").count() == 0
    phone.wait_text("#toast", "只添加了 6 张")
    phone.shot("report_photo_limit")
    page.click("#photo-thumbs figure .remove")
    page.wait_for_selector("#photo-thumbs .photo-add")
    assert "还可添加 1 张" in page.inner_text("#photo-limit")
    page.click("#report-submit")
    page.wait_for_selector("#outbox-list li[data-state=done]", timeout=30_000)
    assert [c.photos for c in cases(city)] == [5]


def test_no_grid_is_judged_before_the_area_is_there(phone: Phone, city: Engine) -> None:
    """Right after sign-in the worker's grids are still downloading: the screens say so, not
    不在我的网格内 (the report screen said it, and kept saying it after the grids came)."""
    held: list[Any] = []
    phone.context.route(re.compile(r".*/me/area$"), lambda r: held.append(r))  # the download waits
    phone.go()
    page = phone.page
    page.fill("#username", "wang")
    page.fill("#password", PASSWORD)
    page.click("#signin-button")
    page.wait_for_selector("[data-screen=where] #here-code")
    phone.wait_text("#here-name", "正在下载")
    seen = [page.inner_text("[data-screen=where] .here")]
    phone.tab("report")
    phone.wait_text("#report-where", "正在下载")
    seen.append(page.inner_text("#report-where"))
    phone.shot("report_area_loading")
    assert held and not any("不在" in s for s in seen), seen
    for route in held:
        route.continue_()
    phone.context.unroute(re.compile(r".*/me/area$"))
    phone.wait_text("#report-where", GRID_CODES[0])  # the grid, once the grids are in
    phone.tab("where")
    phone.wait_text("#here-code", GRID_CODES[0])


def test_the_next_worker_on_the_phone_is_not_shown_the_last_ones_grids(phone: Phone,
                                                                      city: Engine) -> None:
    """wang signs out and zhao (grids 004-006) signs in on the same phone: while zhao's area
    downloads the phone says so; it showed wang's grids as zhao's (here: 001, wang's, for a
    worker standing outside his own grids)."""
    add_user(city, "zhao", PASSWORD, "grid_worker", areas=tuple(GRID_CODES[3:6]))
    phone.go()
    phone.sign_in()
    phone.tab("mine")
    phone.page.click("#signout")
    phone.page.wait_for_selector("#signin")
    held: list[Any] = []
    phone.context.route(re.compile(r".*/me/area$"), lambda r: held.append(r))
    page = phone.page
    page.fill("#username", "zhao")
    page.fill("#password", PASSWORD)
    page.click("#signin-button")
    page.wait_for_selector("[data-screen=where] #here-code")
    phone.wait_text("#here-name", "正在下载")
    assert GRID_CODES[0] not in page.inner_text("[data-screen=where] .here")
    for route in held:
        route.continue_()
    phone.context.unroute(re.compile(r".*/me/area$"))
    phone.wait_text("#here-code", "不在")  # zhao stands in wang's grid 001, not in his own
    phone.wait_text("#area-note", "3")


def test_a_report_opened_from_mine_goes_back_to_mine(phone: Phone, city: Engine) -> None:
    """我的 → one of my reports → 返回: back to 我的, with its tab lit while the case is shown
    (返回 went to 待办, and the 待办 tab was lit as if the report were a task)."""
    phone.go()
    phone.sign_in()
    fill_report(phone, None)
    page = phone.page
    page.click("#report-submit")
    page.wait_for_selector("#report-list li a", timeout=30_000)
    page.click("#report-list li a")
    page.wait_for_selector("#view[data-screen=case] #case")
    assert "active" in (page.get_attribute("#tab-mine", "class") or "")
    assert "active" not in (page.get_attribute("#tab-tasks", "class") or "")
    phone.shot("case_from_mine")
    page.click("#view a.back")
    page.wait_for_selector("#view[data-screen=mine] #my-reports")


def test_a_long_word_in_a_report_stays_inside_the_phone(phone: Phone, city: Engine) -> None:
    """A description without spaces (a pasted link, a code, a row of characters) ran out of the
    case card and off the 390 px screen: the end of what the worker wrote could not be read."""
    phone.go()
    phone.sign_in()
    long_word = "https://example.org/" + "x" * 300
    fill_report(phone, None, description=long_word)
    page = phone.page
    page.click("#report-submit")
    page.wait_for_selector("#report-list li a", timeout=30_000)
    page.click("#report-list li a")
    page.wait_for_selector("#view[data-screen=case] #case .desc")
    assert page.inner_text("#case .desc") == long_word
    # the text itself stays in its box (its box did; the words ran out of it), and nothing of
    # the case screen scrolls sideways
    sizes = page.eval_on_selector("#case .desc", "e => [e.scrollWidth, e.clientWidth]")
    assert sizes[0] <= sizes[1], sizes
    wide = page.evaluate("() => [...document.querySelectorAll('#view *')]"
                         ".filter((e) => !e.closest('.leaflet-container')"  # the map clips
                         " && e.getBoundingClientRect().right > 390.5)"
                         ".map((e) => e.tagName + '.' + e.className)")
    assert wide == [], wide
    phone.shot("case_long_word")


# -- where am I, offline ---------------------------------------------------------------------
def test_where_am_i_offline(phone: Phone) -> None:
    phone.go()
    phone.sign_in()
    phone.offline()
    phone.reload()
    for i in (1, 2):  # grids 002 and 003: computed on the phone, no network
        phone.context.set_geolocation(centre(i))
        phone.wait_text("#here-code", GRID_CODES[i])
    phone.shot("where_offline")
    phone.context.set_geolocation(centre(4))  # grid 005: not wang's
    phone.wait_text("#here-code", "不在")
    assert GRID_CODES[1] in phone.page.inner_text("#here-name")  # the nearest of wang's


# The grid label of a grid's code and the position dot (the last circle of the position pane):
# their boxes on the screen, and whether they overlap.
# On the report screen the pin (standing on the same point) is a mark too.
_LABEL_AND_DOT = """(code) => {
  const map = document.querySelector('#view .map');
  const label = [...map.querySelectorAll('.grid-label')].find((e) => e.textContent.trim() === code);
  const dots = map.querySelectorAll('.leaflet-position-pane path');
  if (!label || !dots.length) return null;
  const a = label.getBoundingClientRect();
  const marks = [dots[dots.length - 1], ...map.querySelectorAll('.leaflet-marker-icon.pin')]
    .map((e) => e.getBoundingClientRect());
  const box = (r) => [r.left, r.top, r.right, r.bottom].map(Math.round);
  const apart = (b) => a.right <= b.left || b.right <= a.left || a.bottom <= b.top
    || b.bottom <= a.top;
  return { label: box(a), marks: marks.map(box), overlap: marks.some((b) => !apart(b)) };
}"""


def test_the_position_dot_leaves_the_grid_label_readable(phone: Phone) -> None:
    """Standing at a grid's centre, the 定位 dot covered the grid's label ("0●1"): the label
    moves off the dot, at the first zoom and after zooming in, and back when the worker walks
    away; on the report's map it keeps clear of the dot and the pin."""
    phone.go()
    phone.sign_in()
    page, code = phone.page, GRID_CODES[0][-3:]
    phone.wait_text("#here-code", GRID_CODES[0])
    page.wait_for_function(f"() => ({_LABEL_AND_DOT})('{code}')?.overlap === false",
                           timeout=10_000)
    phone.shot("where_label_clear")
    page.click("#where-map .leaflet-control-zoom-in")
    page.wait_for_timeout(600)  # the zoom's animation
    boxes = page.evaluate(_LABEL_AND_DOT, code)
    assert boxes and boxes["overlap"] is False, boxes
    phone.context.set_geolocation(centre(1))  # grid 002's centre: 001's label back in place
    phone.wait_text("#here-code", GRID_CODES[1])
    page.wait_for_function("() => document.querySelectorAll('#where-map .grid-label.moved')"
                           ".length === 1", timeout=10_000)
    page.wait_for_function(f"() => ({_LABEL_AND_DOT})('{GRID_CODES[1][-3:]}')?.overlap === "
                           "false", timeout=10_000)
    # the report's map: the dot and the pin on the worker's position, the label clear of both
    phone.tab("report")
    page.wait_for_selector("#report-map .leaflet-marker-icon.pin", timeout=10_000)
    page.wait_for_function(f"() => ({_LABEL_AND_DOT})('{GRID_CODES[1][-3:]}')?.overlap === "
                           "false", timeout=10_000)
    phone.shot("report_label_clear")


# -- verify and check ----------------------------------------------------------------------------
def _desk_case(url: str, point: dict[str, float], fed_back: bool = False) -> int:
    body = {"idempotency_key": os.urandom(8).hex(), "category": "E0103",
            "lon": point["longitude"], "lat": point["latitude"], "description": "市民来电：路面脏"}
    cid = httpx.post(f"{url}/cases", json=body, headers=DESK).json()["id"]
    if fed_back:
        for action, who, payload in (("verify", DESK, {}), ("register", DESK, {}),
                                     ("dispatch", DESK, {"department": "D-CLEAN"}),
                                     ("accept", DEPT, {}), ("handle", DEPT, {}),
                                     ("feed_back", DEPT, {})):
            r = httpx.post(f"{url}/cases/{cid}/{action}", json=payload, headers=who)
            assert r.status_code == 200, r.text
    return int(cid)


def test_verify_and_check_from_the_phone(phone: Phone, city: Engine, tmp_path: Path) -> None:
    verify = _desk_case(phone.url, centre(0))
    check = _desk_case(phone.url, centre(1), fed_back=True)
    phone.go()
    phone.sign_in()
    phone.tab("tasks")
    page = phone.page
    page.wait_for_selector(f".task[data-id='{check}']")
    assert page.get_attribute(f".task[data-id='{verify}']", "data-task") == "verify"
    assert page.get_attribute(f".task[data-id='{check}']", "data-task") == "check"
    phone.shot("tasks")
    # verify: real
    page.click(f".task[data-id='{verify}']")
    page.wait_for_selector("#step-form")
    phone.shot("case_verify")
    page.click("[data-choice=verify]")
    page.click("#step-submit")
    page.wait_for_selector(f".task[data-id='{check}']")
    _await_state(city, verify, "verified")
    assert _state(city, verify) == "verified"
    # check: failed without a note is refused on the phone; nothing is queued or sent
    page.click(f".task[data-id='{check}']")
    page.wait_for_selector("#step-form")
    page.click("[data-choice=fail]")
    page.click("#step-submit")
    assert "说明" in page.inner_text("#step-error")
    phone.shot("case_check_refused")
    assert _state(city, check) == "fed_back"
    page.fill("#step-note", "路面仍有油污")
    page.set_input_files("#step-photo-input", str(jpeg(tmp_path / "check.jpg", (2000, 1500))))
    page.wait_for_selector("#step-photo-thumbs figure")
    phone.shot("case_check")
    page.click("#step-submit")
    _await_state(city, check, "checked")
    with city.connect() as conn:
        row = conn.execute(text(
            "SELECT c.state, c.check_result, h.reason, h.actor, (SELECT count(*) FROM "
            "case_photo p WHERE p.history_id = h.id) AS photos FROM case_record c JOIN "
            "case_history h ON h.case_id = c.id AND h.action = 'check' WHERE c.id = :i"),
            {"i": check}).one()
        verified_by = conn.execute(text("SELECT actor FROM case_history WHERE case_id = :i "
                                        "AND action = 'verify'"), {"i": verify}).scalar()
    assert tuple(row) == ("checked", "fail", "路面仍有油污", "wang", 1)
    assert verified_by == "wang"
    # the case and its photos, as the worker sees them now
    page.goto(f"{phone.url}/m/#/case/{check}")
    page.wait_for_selector("#case-photos img:not(.loading)")
    phone.shot("case_detail")


def _state(db: Engine, cid: int) -> str:
    with db.connect() as conn:
        return str(conn.execute(text("SELECT state FROM case_record WHERE id = :i"),
                                {"i": cid}).scalar())


def _await_state(db: Engine, cid: int, state: str, timeout_s: float = 30) -> None:
    """Until the case reaches ``state`` (the outbox sends in the background) or time is up;
    the caller asserts what it needs afterwards."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _state(db, cid) != state:
        time.sleep(0.3)


# -- sign in once: refresh, revocation -------------------------------------------------------
def _queue_offline_report(phone: Phone) -> None:
    phone.offline()
    fill_report(phone, None, search="垃圾", key="E0102", description="垃圾桶满溢")
    phone.page.click("#report-submit")
    phone.page.wait_for_selector("#outbox-list li[data-state=waiting]")


def test_expired_access_token_is_refreshed_and_the_queue_sent(phone: Phone,
                                                              city: Engine) -> None:
    from api.security.identity import issue_token
    from gridcore.settings import Settings

    phone.go()
    phone.sign_in()
    _queue_offline_report(phone)
    sid = phone.page.evaluate(_READ_SESSION)
    expired, _ = issue_token(Settings().security, "wang", "grid_worker", minutes=-5,
                             session_id=sid)
    phone.page.evaluate(_WRITE_ACCESS, expired)  # the token expired while the phone waited…
    phone.reload()  # …and the app was opened again, still offline
    phone.offline(False)
    phone.page.wait_for_selector("#outbox-list li[data-state=done]", timeout=SENT_AFTER_REOPEN)
    assert len(cases(city)) == 1
    with city.connect() as conn:
        assert conn.execute(text("SELECT rotations FROM device_session")).scalar() >= 1


def test_revoked_session_asks_to_sign_in_and_keeps_the_queue(phone: Phone,
                                                              city: Engine) -> None:
    from layers.security.sessions import revoke_user

    phone.go()
    phone.sign_in()
    _queue_offline_report(phone)
    revoke_user(city, "wang", "admin", "phone lost")
    phone.offline(False)
    phone.page.wait_for_selector("#signin #signin-queue", timeout=30_000)
    assert "1" in phone.page.inner_text("#signin-queue")
    assert phone.page.input_value("#username") == "wang"
    phone.shot("signin_again")
    assert cases(city) == []
    phone.page.fill("#password", PASSWORD)
    phone.page.click("#signin-button")
    phone.page.wait_for_selector("#view[data-screen=mine]")  # back where the worker was
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not cases(city):
        time.sleep(0.3)
    assert len(cases(city)) == 1


_READ_SESSION = """() => new Promise((done, fail) => { const r = indexedDB.open('gridcore-field');
  r.onerror = fail; r.onsuccess = () => { const q = r.result.transaction('kv').objectStore('kv')
  .get('auth'); q.onsuccess = () => done(q.result.sessionId); }; })"""
_WRITE_ACCESS = """(token) => new Promise((done, fail) => {
  const r = indexedDB.open('gridcore-field'); r.onerror = fail;
  r.onsuccess = () => { const s = r.result.transaction('kv', 'readwrite')
  .objectStore('kv'); const q = s.get('auth'); q.onsuccess = () => { const auth = q.result;
  auth.access = token; s.put(auth, 'auth').onsuccess = () => done(true); }; }; })"""


# -- a Safari-class phone ----------------------------------------------------------------------
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1")
# What Safari-class browsers (iOS 16, older WebKit) lack and Chromium has: Background Sync,
# the install prompt, Wake Lock, persistent storage, crypto.randomUUID (before iOS 15.4).
WITHOUT_CHROMIUM_APIS = """
(() => {
  const gone = { configurable: true, get: () => undefined };
  delete window.SyncManager;
  delete window.BeforeInstallPromptEvent;
  if (window.ServiceWorkerRegistration)
    Object.defineProperty(ServiceWorkerRegistration.prototype, 'sync', gone);
  Object.defineProperty(Navigator.prototype, 'wakeLock', gone);
  if (window.StorageManager) Object.defineProperty(StorageManager.prototype, 'persist', gone);
  Object.defineProperty(Crypto.prototype, 'randomUUID', gone);
})();
"""


def test_safari_class_phone_without_chromium_apis(server, city: Engine, artifacts: Path,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    """Every Chromium-only API the app uses has its fallback: without Background Sync the
    outbox is sent when the network returns (after the app was closed and reopened), without
    the install prompt 我的 says how to add the app on an iPhone, without Wake Lock a patrol
    still records, without crypto.randomUUID a report still gets its idempotency key."""
    chromium, url = server
    phone = Phone(chromium, url, artifacts, user_agent=IPHONE, init_script=WITHOUT_CHROMIUM_APIS)
    try:
        assert phone.page.evaluate("() => 'SyncManager' in window") is False
        phone.go()
        phone.sign_in()
        assert phone.page.evaluate(
            "() => navigator.serviceWorker.ready.then(r => r.sync === undefined)") is True
        phone.offline()
        fill_report(phone, jpeg(tmp_path / "camera.jpg", (3000, 4000)))
        phone.page.click("#report-submit")
        phone.page.wait_for_selector("#outbox-list li[data-state=waiting]")
        key = phone.page.evaluate("""() => new Promise((done) => {
            indexedDB.open('gridcore-field').onsuccess = (e) => {
              const q = e.target.result.transaction('outbox').objectStore('outbox').getAll();
              q.onsuccess = () => done(q.result.map((i) => i.id));  // the Idempotency-Key
            }; })""")
        assert len(key) == 1 and re.fullmatch(r"[0-9a-f-]{36}", key[0]), key
        phone.page.close()  # closed and reopened offline, then the network returns
        phone.page = phone.open()
        phone.go("#/mine")
        phone.page.wait_for_selector("#outbox-list li[data-state=waiting]")
        phone.offline(False)
        phone.page.wait_for_selector("#outbox-list li[data-state=done]", timeout=SENT_AFTER_REOPEN)
        filed = cases(city)
        assert len(filed) == 1 and filed[0].photos == 1
        phone.page.wait_for_selector(f"#report-list li[data-id='{filed[0].id}']")
        assert phone.page.locator("#report-list").count() == 1  # one list, however many draws
        assert phone.page.is_hidden("#install")
        phone.wait_text("#account", "添加到主屏幕")
        phone.shot("safari_mine")
        row = walk_on_duty(phone, city, 3)
        assert row.points >= 2
        assert not phone.errors, phone.errors
    finally:
        phone.close()


# -- patrol, the English switch ----------------------------------------------------------------
def walk_on_duty(phone: Phone, city: Engine, steps: int, shot: str | None = None) -> Any:
    """Go on duty, walk east ``steps`` positions a second and more apart, go off duty; the
    shift as stored once the app sent its end (ended, points, kind)."""
    phone.tab("patrol")
    page = phone.page
    page.click("#duty-toggle")
    page.wait_for_selector("#duty:not([hidden])")
    for step in range(steps):
        point = centre(0)
        phone.context.set_geolocation({**point, "longitude": point["longitude"] + step * 3e-4})
        time.sleep(1.3)
    phone.wait_text("#duty-info", f"[{steps - 1}-9] 个点")
    if shot:
        phone.shot(shot)
    page.click("#duty-toggle")
    page.wait_for_selector("#duty[hidden]", state="attached")
    deadline = time.monotonic() + 30
    row = None
    while time.monotonic() < deadline:
        with city.connect() as conn:
            row = conn.execute(text("SELECT ended_at IS NOT NULL AS ended, points, "
                                    "GeometryType(track) AS kind FROM patrol_shift")).first()
        if row is not None and row.ended:
            break
        time.sleep(0.5)
    assert row is not None and row.ended and row.kind == "LINESTRINGM"
    return row


def test_patrol_records_on_duty_only(phone: Phone, city: Engine) -> None:
    phone.go()
    phone.sign_in()
    row = walk_on_duty(phone, city, 4, shot="patrol_on_duty")
    assert row.points >= 3
    time.sleep(2)  # off duty: nothing more is recorded
    with city.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM patrol_point")).scalar() == row.points


def test_signing_out_on_duty_ends_the_shift(phone: Phone, city: Engine) -> None:
    """A phone handed over on duty: the worker is asked, and signing out ends the shift on the
    server at once (it stayed open until the longest-shift limit); saying no keeps him on
    duty and signed in."""
    phone.go()
    phone.sign_in()
    phone.tab("patrol")
    page = phone.page
    page.click("#duty-toggle")
    page.wait_for_selector("#duty:not([hidden])")
    for step in (1, 2):
        point = centre(0)
        phone.context.set_geolocation({**point, "longitude": point["longitude"] + step * 3e-4})
        time.sleep(1.3)
    phone.wait_text("#duty-info", "[1-9] 个点")
    asked: list[str] = []

    def answer(accept: bool) -> None:
        def on_dialog(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()
        page.once("dialog", on_dialog)

    phone.tab("mine")
    answer(False)
    page.click("#signout")
    page.wait_for_function("() => document.querySelector('#signout')")
    assert asked and "巡查" in asked[0]
    phone.tab("patrol")
    page.wait_for_selector("#duty:not([hidden])")  # still on duty
    phone.tab("mine")
    answer(True)
    page.click("#signout")
    page.wait_for_selector("#signin")
    assert len(asked) == 2
    with city.connect() as conn:
        ended = conn.execute(text("SELECT ended_at IS NOT NULL FROM patrol_shift")).scalar_one()
        kept = conn.execute(text("SELECT count(*) FROM patrol_point")).scalar_one()
    assert ended and kept >= 1  # the positions recorded before it went too


def test_english_switch(phone: Phone) -> None:
    phone.go()
    phone.sign_in()
    phone.tab("mine")
    phone.page.click(".lang-switch button[lang=en]")
    phone.wait_text("#tab-tasks .label", "Tasks")
    phone.shot("mine_en")
    phone.tab("where")
    phone.wait_text("#report-here", "Report here")
    phone.shot("where_en")
    # labels and buttons are capitalised as English writes them (they read 'all 0' beside
    # 'Verify 0', and 'user' / 'password' over the sign-in fields)
    phone.tab("tasks")
    phone.wait_text("#view .chips button", "^All 0$")
    # a class's name as a label begins with a capital too ('dirty road E0103' did)
    phone.tab("report")
    phone.page.click("#category-button")
    phone.page.fill("#cat-search", "E0103")
    phone.page.click("#cat-list [data-key=E0103]")
    assert phone.page.inner_text("#category-button b")[:1].isupper()
    phone.tab("mine")
    phone.page.click("#signout")
    phone.page.wait_for_selector("#signin")
    assert phone.page.inner_text("label[for=username]") == "Username"
    assert phone.page.inner_text("label[for=password]") == "Password"
    phone.shot("signin_en")


def test_english_lines_standing_alone_begin_with_a_capital(phone: Phone, city: Engine) -> None:
    """In English a case's deadline read "due 2026-12-08 04:23 +08:00", its photo's caption
    "reported" and the patrol's status "on duty since …", beside "Off duty: no position is
    recorded" and every other line of the app."""
    phone.go()
    phone.sign_in()
    phone.tab("mine")
    page = phone.page
    page.click(".lang-switch button[lang=en]")
    phone.wait_text("#tab-tasks .label", "Tasks")
    fill_report(phone, jpeg(phone.artifacts / "en_photo.jpg", (800, 600)))
    page.click("#report-submit")
    page.wait_for_selector("#report-list li a", timeout=30_000)
    page.click("#report-list li a")
    page.wait_for_selector("#view[data-screen=case] #case-photos figcaption")
    lines = page.eval_on_selector_all("#case > p", "els => els.map((e) => e.innerText)")
    assert any(line.startswith("Due 20") for line in lines), lines
    caption = page.eval_on_selector("#case-photos figcaption", "e => e.innerText")
    assert caption == "Reported", caption
    phone.shot("case_en")
    phone.tab("patrol")
    page.click("#duty-toggle")
    phone.wait_text("#duty-info", "^On duty since ")
    phone.shot("patrol_on_duty_en")
    page.click("#duty-toggle")
    phone.wait_text("#duty-info", "^Off duty")


_ZOOM_THEN_LEAVE = """async (screen) => {
  document.querySelector('#view .leaflet-control-zoom-in').click();
  await new Promise((done) => setTimeout(done, 60));  // the zoom animation has begun
  location.hash = screen;
  await new Promise((done) => setTimeout(done, 500));  // past Leaflet's 250 ms end timer
}"""


def test_leaving_a_screen_while_its_map_zooms(phone: Phone, city: Engine) -> None:
    """A worker who taps another tab right after the map zoomed (to their position, or by a
    pinch) gets the next screen and no error: the zoom's end no longer lands on a removed map
    (the page errors are checked by the fixture)."""
    phone.go()
    phone.sign_in()
    phone.page.evaluate(_ZOOM_THEN_LEAVE, "#/report")
    phone.page.wait_for_selector("#view[data-screen=report] #report-form")
    phone.page.wait_for_selector("#view .leaflet-control-zoom-in")
    phone.page.evaluate(_ZOOM_THEN_LEAVE, "#/where")
    phone.page.wait_for_selector("#view[data-screen=where] #here-code")
    assert not phone.errors, phone.errors
