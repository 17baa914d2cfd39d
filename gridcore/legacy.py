"""Cases brought in from a legacy system (历史案卷导入) — the rules, no I/O.

A city adopting gridcore has years of cases elsewhere. They come in as they ended: their own
times, their final state, one history row "imported" — no lifecycle steps are invented. This
module decides what the importer may not guess silently:

- :func:`final_state`: a legacy status word → a gridcore state (``closed``, ``voided``) or
  "still open"; an open case is ``dispatched`` when it names a department, else
  ``registered`` (it enters the live queues where a dispatcher picks it up);
- :data:`OTHER_CATEGORY`: the class of a case whose category the mapping table does not
  cover, when the operator accepts that (``--unmapped other``);
- :func:`import_key`: the idempotency key of an imported case, from its system and id.
"""

from __future__ import annotations

import hashlib

from gridcore.intake import SOURCES

OTHER_CATEGORY = "E9999"  # 其他: gridcore/data/event_classes.csv
IMPORTED = "imported"  # the history action (and category_source) of an imported case
SOURCE_SYSTEM_CHARS = 64

CLOSED_WORDS = frozenset({
    "closed", "close", "resolved", "done", "completed", "complete", "finished", "fixed",
    "archived", "answered", "replied", "acknowledged-closed",
    "已办结", "办结", "已结案", "结案", "已关闭", "关闭", "已完成", "完成", "已回复", "已答复",
    "已处理", "处理完毕"})
VOID_WORDS = frozenset({
    "void", "voided", "cancelled", "canceled", "invalid", "duplicate", "rejected", "withdrawn",
    "作废", "已作废", "无效", "重复", "撤销", "已撤销", "不予受理"})
OPEN_WORDS = frozenset({
    "open", "opened", "new", "pending", "in progress", "in_progress", "assigned", "submitted",
    "acknowledged", "reopened", "受理", "已受理", "处理中", "办理中", "待处理", "未办结",
    "已派遣", "待派遣"})
OPEN = "open"


def final_state(word: str) -> str | None:
    """``closed``, ``voided`` or :data:`OPEN` for a known status word (case-insensitive,
    surrounding spaces ignored); None for a word this module does not know — the mapping table
    (kind ``state``) must say, or the importer lists it as unmapped."""
    w = " ".join(word.strip().lower().split())
    if w in CLOSED_WORDS:
        return "closed"
    if w in VOID_WORDS:
        return "voided"
    if w in OPEN_WORDS:
        return OPEN
    return None


def open_state(department: str | None) -> str:
    """The state of a case still open in the legacy system: it already went to a department
    (``dispatched``) or waits for dispatch (``registered``)."""
    return "dispatched" if department else "registered"


def gridcore_source(word: str) -> str | None:
    """A legacy channel that already is one of gridcore's sources, else None."""
    w = word.strip().lower().replace(" ", "_")
    return w if w in SOURCES else None


def import_key(system: str, source_id: str) -> str:
    """The idempotency key of an imported case (≤ 128 characters, stable across re-imports)."""
    key = f"import:{system}:{source_id}"
    if len(key) <= 128:
        return key
    digest = hashlib.sha256(f"{system}\x1f{source_id}".encode()).hexdigest()
    return f"import:sha256:{digest}"
