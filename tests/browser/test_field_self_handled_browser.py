"""Self-handling (自处置) from the grid worker's phone (issue 24), in headless Chromium with
mobile emulation: the report's "solved on the spot" option asks what was done and a photo after
the work; it is refused on the phone without them, then filed — offline first — as one report
that arrives verified, handled and closed, with the photo before and the photo after."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from tests.browser.test_field_browser import Phone, city, fill_report, jpeg, phone, server

__all__ = ["city", "phone", "server"]


def test_self_handled_report_from_the_phone(phone: Phone, city: Engine, tmp_path: Path) -> None:
    phone.go()
    phone.sign_in()
    page = phone.page
    fill_report(phone, jpeg(tmp_path / "before.jpg"), description="人行道上有一堆垃圾")
    assert page.is_hidden("#self-handled-fields")
    page.check("#self-handled")
    page.wait_for_selector("#self-handled-fields:not([hidden])")
    page.click("#report-submit")  # nothing said, no photo after: refused here
    assert page.inner_text("#report-error") == "请填写处置情况"
    page.fill("#handling", "已当场清扫干净")
    page.click("#report-submit")
    assert page.inner_text("#report-error") == "自处置需要至少一张处置后照片"
    page.set_input_files("#after-input", str(jpeg(tmp_path / "after.jpg", (3000, 4000))))
    page.wait_for_selector("#after-thumbs figure")
    phone.shot("self_handled_form")
    phone.offline()
    page.click("#report-submit")
    page.wait_for_selector("#outbox-list li[data-state=waiting]")
    phone.offline(False)
    page.wait_for_selector("#outbox-list li[data-state=done]", timeout=30_000)
    phone.shot("self_handled_sent")
    with city.connect() as conn:
        row = conn.execute(text("SELECT id, state, self_handled, check_result, filed_by "
                                "FROM case_record")).one()
        steps = conn.execute(text("SELECT action, actor, reason FROM case_history "
                                  "WHERE case_id = :c ORDER BY id"), {"c": row.id}).all()
        photos = conn.execute(text(
            "SELECT coalesce(h.action, 'report') FROM case_photo p LEFT JOIN case_history h "
            "ON h.id = p.history_id WHERE p.case_id = :c ORDER BY p.id"), {"c": row.id}).all()
    assert (row.state, row.self_handled, row.check_result, row.filed_by) == (
        "closed", True, "pass", "wang")
    assert [(s.action, s.actor) for s in steps] == [("report", "wang"), ("self_handle", "wang")]
    assert steps[1].reason == "已当场清扫干净"
    assert [p[0] for p in photos] == ["report", "self_handle"]
