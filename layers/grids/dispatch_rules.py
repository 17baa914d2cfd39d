"""Dispatch rules (权责清单) in PostGIS: load, replace, CSV import and export.

CSV columns: ``category_key,area_level,area_code,department_code,note`` (area_code empty for a
city-wide rule) and optionally ``team_level`` (community / street / district, with
department_code empty: that level's team of the report's area, 小事不出社区). An import is
validated as a whole against the taxonomy, the departments and the existing areas and current
grids, then replaces every rule in one transaction — a refused file
leaves the table exactly as it was.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from gridcore.dispatch import DispatchRule, DispatchRules
from gridcore.errors import ImportRejected
from gridcore.security.spreadsheet import neutralise, restore

COLUMNS = ("category_key", "area_level", "area_code", "department_code", "note", "team_level")


def _teams(conn: Connection) -> dict[tuple[str, str], str]:
    return {(r.level, r.area_code): r.code for r in conn.execute(text(
        "SELECT code, level, area_code FROM department WHERE level_team"))}


def _catalogue(conn: Connection) -> tuple[dict[str, str], set[str], dict[str, set[str]]]:
    departments = {code: name for code, name in conn.execute(text(
        "SELECT code, name FROM department"))}
    categories = {r[0] for r in conn.execute(text("SELECT key FROM category"))}
    areas: dict[str, set[str]] = {"district": set(), "street": set(), "community": set()}
    for level, code in conn.execute(text("SELECT level, code FROM admin_area")):
        areas.setdefault(level, set()).add(code)
    areas["grid"] = {r[0] for r in conn.execute(
        text("SELECT code FROM unit_grid WHERE gen_to IS NULL"))}
    return departments, categories, areas


def load_rules(conn: Connection, validate: bool = False) -> DispatchRules:
    """The stored rules (validated against the current areas when asked)."""
    rows = conn.execute(text(
        "SELECT id, category_key, area_level, area_code, department_code, note, team_level "
        "FROM dispatch_rule ORDER BY id")).all()
    rules = [DispatchRule(r.category_key, r.area_level, r.area_code, r.department_code or "",
                          r.note, r.id, r.team_level) for r in rows]
    departments, categories, areas = _catalogue(conn)
    if validate:
        return DispatchRules.validated(rules, departments, categories, areas, _teams(conn))
    return DispatchRules(rules, departments, _teams(conn))


def replace_rules(engine: Engine, rules: list[DispatchRule]) -> int:
    """Validate and store ``rules`` in place of all existing ones (one transaction)."""
    with engine.begin() as conn:
        conn.execute(text("LOCK TABLE dispatch_rule IN EXCLUSIVE MODE"))
        departments, categories, areas = _catalogue(conn)
        DispatchRules.validated(rules, departments, categories, areas, _teams(conn))
        conn.execute(text("DELETE FROM dispatch_rule"))
        if rules:
            conn.execute(text(
                "INSERT INTO dispatch_rule (category_key, area_level, area_code, "
                "department_code, note, team_level) VALUES (:c, :l, :a, :d, :n, :t)"),
                [{"c": r.category_key, "l": r.area_level, "a": r.area_code or None,
                  "d": r.department_code or None, "n": r.note, "t": r.team_level}
                 for r in rules])
    return len(rules)


def parse_csv(text_: str, source: str = "CSV") -> list[DispatchRule]:
    reader = csv.DictReader(io.StringIO(text_.lstrip("\ufeff")))
    missing = [c for c in COLUMNS[:4] if c not in (reader.fieldnames or [])]
    # department_code may be empty where team_level names a level's team
    if missing:
        raise ImportRejected(f"{source} lacks column(s) {', '.join(missing)}; expected "
                             f"{','.join(COLUMNS)}",
                             problems=[{"row": 0, "field": c, "reason": "missing column"}
                                       for c in missing])
    rules = []
    for row in reader:
        def cell(name: str, row: dict[str, str | None] = row) -> str:
            return (row.get(name) or "").strip()

        rules.append(DispatchRule(cell("category_key"), cell("area_level"),
                                  cell("area_code") or None, cell("department_code"),
                                  restore(cell("note")), team_level=cell("team_level") or None))
    return rules


def import_csv(engine: Engine, path: Path) -> int:
    return replace_rules(engine, parse_csv(Path(path).read_text(encoding="utf-8"), str(path)))


def export_csv(engine: Engine, path: Path | None = None) -> str:
    with engine.connect() as conn:
        rules = load_rules(conn).rules
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    teams = any(r.team_level for r in rules)  # the column only when a rule names a team
    writer.writerow(COLUMNS if teams else COLUMNS[:5])
    for r in sorted(rules, key=lambda r: (r.category_key, r.area_level, r.area_code or "")):
        row = [r.category_key, r.area_level, r.area_code or "", r.department_code,
               neutralise(r.note)]
        writer.writerow([*row, r.team_level or ""] if teams else row)
    if path is not None:
        Path(path).write_text(out.getvalue(), encoding="utf-8")
    return out.getvalue()
