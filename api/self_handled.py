"""A report filed as solved on the spot (自处置) in one request: ``POST /cases`` with
``self_handled=true``, what was done (``handling``), the report's ``photos`` taken before the
work and ``after_photos`` taken after it (multipart). Everything is checked before anything is
stored (a clear 422 / 403 otherwise); the report is filed, then its ``self_handle`` step —
verified, handled and closed — is taken with the after photos, so the case is counted as
自处置 in the evaluation like one closed in two requests. A resend (the same idempotency key:
a phone whose answer was lost) is answered with the closed case, not handled twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import text

from api.uploads import form_photos
from gridcore.coordination import check_self_handled_report
from gridcore.errors import ValidationError
from gridcore.intake import Photo, Report
from gridcore.settings import CaseSettings
from layers.cases.transitions import transition

TRUE = {"true", "1", "yes", "on"}


@dataclass(frozen=True)
class SelfHandling:
    handling: str
    after: list[Photo]


async def self_handling_of(request: Request, settings: CaseSettings) -> SelfHandling | None:
    """The self-handling part of a report (None: an ordinary report). Reads the body the
    report was read from (Starlette keeps it)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        flag = str(form.get("self_handled") or "").strip().lower()
        if flag not in TRUE:
            if form.getlist("after_photos"):
                raise ValidationError("after_photos go with self_handled=true",
                                      field="after_photos")
            return None
        after = await form_photos(form, settings, "after_photos")
        return SelfHandling(str(form.get("handling") or ""), after)
    import json

    try:
        data: Any = json.loads(await request.body() or b"{}")
    except ValueError:
        return None  # the report's reader answered that already
    if not isinstance(data, dict) or data.get("self_handled") not in (True, "true"):
        return None
    return SelfHandling(str(data.get("handling") or ""), [])


def check(role: str, report: Report, wanted: SelfHandling) -> None:
    check_self_handled_report(role, report.placed, wanted.handling, len(report.photos),
                              len(wanted.after))


def finish(request: Request, actor: str, role: str, case: dict[str, Any],
           wanted: SelfHandling) -> dict[str, Any]:
    """Take the filed report's self_handle step (or answer the case a resend closed)."""
    if case.get("state") == "closed" and case.get("self_handled"):
        return case
    state = request.app.state
    with state.engine.connect() as conn:  # the report's own photos: those taken before
        before = [{"role": "before", "sha256": r[0].strip()} for r in conn.execute(text(
            "SELECT sha256 FROM case_photo WHERE case_id = :c AND history_id IS NULL "
            "ORDER BY id"), {"c": case["id"]})]
    return transition(state.engine, state.settings.cases, state.resolver, case["id"],
                      "self_handle", actor, role,
                      {"reason": wanted.handling.strip(), "attachments": before},
                      expected_version=case["version"], photos=wanted.after)
