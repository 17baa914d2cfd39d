"""The stored case history as the models read it (imported and live cases alike)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, text

from gridcore.intelligence.dispatch import SendBack
from gridcore.intelligence.training import dispatch_case

HISTORY = """
SELECT c.id, coalesce(c.description, '') AS text, c.category_key AS category,
       c.created_at AS at, c.department_code AS department, c.origin->>'category' AS subtype,
       c.grid_code AS grid, c.community_code AS community, c.street_code AS street,
       c.district_code AS district
FROM case_record c
WHERE c.created_at >= :since AND c.created_at < :until
ORDER BY c.created_at, c.id
"""

# 退单: every department that sent a case back, at the time of the case's first send-back
SENDBACKS = """
SELECT c.id, coalesce(c.description, '') AS text, c.category_key AS category,
       c.origin->>'category' AS subtype, c.grid_code AS grid, c.community_code AS community,
       c.street_code AS street, c.district_code AS district, h.at, r.department
FROM case_record c
CROSS JOIN LATERAL unnest(c.refused_departments) AS r(department)
JOIN LATERAL (SELECT min(at) AS at FROM case_history
              WHERE case_id = c.id AND action = 'send_back') h ON h.at IS NOT NULL
WHERE c.refused_departments <> '{}' AND c.created_at >= :since AND c.created_at < :until
"""

EPOCH = datetime(1900, 1, 1)
END = datetime(9999, 1, 1)


def read_history(engine: Engine, since: datetime | None = None,
                 until: datetime | None = None) -> pd.DataFrame:
    """One row per stored case (``gridcore.intelligence.training``'s columns), oldest first;
    ``at`` in UTC."""
    params = {"since": since or EPOCH, "until": until or END}
    with engine.connect() as conn:
        frame = pd.read_sql_query(text(HISTORY), conn, params=params)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def read_sendbacks(engine: Engine, since: datetime | None = None,
                   until: datetime | None = None) -> list[SendBack]:
    params = {"since": since or EPOCH, "until": until or END}
    with engine.connect() as conn:
        rows = conn.execute(text(SENDBACKS), params).mappings().all()
    out = []
    for r in rows:
        case = dispatch_case({**r, "department": None})
        out.append(SendBack(case.path, case.place, str(r["department"]),
                            pd.Timestamp(r["at"]).to_pydatetime()))
    return out


def class_terms(engine: Engine) -> dict[str, list[str]]:
    """Keywords per class from the taxonomy's names (the keyword baseline and a feature)."""
    from gridcore.intelligence.features import terms_from_names

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT key, name_zh, name_en FROM category")).all()
    return {r.key: terms_from_names([r.name_zh, r.name_en]) for r in rows}


def department_names(engine: Engine) -> dict[str, str]:
    """The department table (code → name): dispatch's cold start for departments without
    history (``gridcore.intelligence.directory``)."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code, name FROM department")).all()
    return {str(r.code): str(r.name) for r in rows}


INVENTORY = """
SELECT {area} AS area, 'P' || p.class_code AS category, count(*) AS parts,
       count(*) FILTER (WHERE p.state <> 'intact') AS damaged
FROM city_part p {join}
WHERE p.grid_code IS NOT NULL
GROUP BY 1, 2
"""


def read_inventory(engine: Engine) -> dict[str, pd.DataFrame]:
    """City parts (部件) per area × class and how many are not intact, per level: the forecast's
    inventory features (more lamps, more lamp failures)."""
    queries = {"grid": INVENTORY.format(area="p.grid_code", join=""),
               "community": INVENTORY.format(
                   area="g.community_code",
                   join="JOIN unit_grid g ON g.code = p.grid_code AND g.gen_to IS NULL")}
    with engine.connect() as conn:
        return {level: pd.read_sql_query(text(sql), conn) for level, sql in queries.items()}
