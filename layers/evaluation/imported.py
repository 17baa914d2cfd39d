"""How many cases of an evaluation window came from a legacy system (历史案卷导入).

An imported case brings only the outcome its system recorded — reported, closed, voided, the
department — and no lifecycle step (``gridcore import cases`` invents none), so the indicators
of the steps (dispatch, handling, on-site check) cannot count it. The board says so for a
window that holds such cases instead of ranking on the few indicators that remain in silence.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

# The partial index on (source_system, source_id) holds the imported cases only: a city that
# imported nothing answers from an empty index.
_IMPORTED = text("""
SELECT source_system, count(*) FROM case_record
WHERE source_system IS NOT NULL AND created_at >= :start AND created_at < :end
GROUP BY source_system ORDER BY count(*) DESC, source_system
""")


def imported_in(conn: Connection, start: datetime, end: datetime) -> dict[str, int]:
    """legacy system → cases reported in [start, end) that came from it."""
    return {str(s): int(n) for s, n in conn.execute(_IMPORTED, {"start": start, "end": end})}
