"""An event as one sentence for people (webhook robots' messages), from the message catalogue's
``notify`` namespace — the same sentences the pages' toasts show."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from api import i18n
from gridcore.calendar import city_time
from gridcore.events import CaseEvent
from gridcore.taxonomy import default_taxonomy


def event_text(event: CaseEvent, tz: ZoneInfo, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
    def t(key: str, **values: object) -> str:
        return i18n.translate(lang, f"notify.{key}", **values)

    category = event.category_key or ""
    if category in default_taxonomy():
        cls = default_taxonomy().get(category)
        category = cls.name_zh if lang == "zh-CN" else cls.name_en
    details = event.details
    deadline = details.get("deadline")
    when = city_time(datetime.fromisoformat(deadline), tz) if deadline else ""
    detail = t(f"detail_{event.kind.value}", department=event.department_code or "",
               reason=details.get("reason", ""), deadline=when,
               assignee=event.assignee or "", primary=details.get("primary_public_no")
               or details.get("primary_case_id") or "",
               action=i18n.translate(lang, f"case.action_{details['action']}")
               if details.get("action") else "")
    return t("text", product=i18n.translate(lang, "common.product"),
             kind=i18n.translate(lang, f"case.kind_{event.kind.value}"),
             no=event.public_no or event.case_id,
             category=category, grid=event.grid_code or "", detail=detail)
