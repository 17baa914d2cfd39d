"""Departments (部门): code, name, parent code, contact — from a plain CSV; optionally the
level a department belongs to (``level`` district / street / community, ``area_code`` the area
it serves, ``level_team`` true for the area's own team, which takes what is escalated to that
level: 小事不出社区，大事不出街道)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, text

from layers.db.copy import escape_text, plain
from layers.exchange.imports.common import flag_duplicates, stage
from layers.exchange.imports.reading import read_csv_table
from layers.exchange.imports.report import ImportReport, Problems, refuse_database_errors

COLUMNS = ["code", "name", "parent_code", "contact", "level", "area_code", "level_team"]
AREA_DIGITS = {"district": 6, "street": 9, "community": 12}
TRUE, FALSE = ("true", "1", "yes", "是"), ("", "false", "0", "no", "否")


def _optional(df: pd.DataFrame, name: str) -> list[str]:
    return (df[name].fillna("").astype(str).str.strip() if name in df.columns
            else pd.Series([""] * len(df))).tolist()


def _levels(df: pd.DataFrame, problems: Problems) -> tuple[list[str], list[str], list[str]]:
    """The level columns, checked: a level needs the code of an area of that level."""
    levels, areas, teams = (_optional(df, c) for c in ("level", "area_code", "level_team"))
    out_teams = []
    for i, (level, area, team) in enumerate(zip(levels, areas, teams, strict=True)):
        if level and level not in AREA_DIGITS:
            problems.add(i + 1, "level", f"level {level!r} must be one of "
                         f"{', '.join(AREA_DIGITS)} (or empty: a city department)")
        elif level and (not area.isdigit() or len(area) != AREA_DIGITS[level]):
            problems.add(i + 1, "area_code", f"a {level} department needs the "
                         f"{AREA_DIGITS[level]}-digit code of its {level}, not {area!r}")
        elif not level and area:
            problems.add(i + 1, "area_code", "area_code without a level")
        if team.lower() not in TRUE + FALSE:
            problems.add(i + 1, "level_team", f"level_team {team!r} must be true or false")
        elif team.lower() in TRUE and not level:
            problems.add(i + 1, "level_team", "a level team needs a level")
        out_teams.append("t" if team.lower() in TRUE else "f")
    seen: dict[tuple[str, str], int] = {}
    for i, (level, area, team) in enumerate(zip(levels, areas, out_teams, strict=True)):
        if team == "t":
            if (level, area) in seen:
                problems.add(i + 1, "level_team", f"the {level} {area} already has its team "
                             f"on row {seen[(level, area)]}")
            seen.setdefault((level, area), i + 1)
    return levels, areas, out_teams


@refuse_database_errors("departments")
def load_departments(engine: Engine, df: pd.DataFrame) -> ImportReport:
    what = "departments"
    problems = Problems(what)
    codes = df["code"].str.strip().to_numpy(dtype=object)
    names = df["name"].str.strip().tolist()
    parents = (df["parent_code"].str.strip() if "parent_code" in df.columns
               else pd.Series([""] * len(df))).tolist()
    contacts = (df["contact"] if "contact" in df.columns else pd.Series([""] * len(df))).tolist()
    for i, code in enumerate(codes):
        if not code or len(code) > 32:
            problems.add(i + 1, "code", f"department code {code!r} must be 1–32 characters")
        if not names[i]:
            problems.add(i + 1, "name", "empty name")
    flag_duplicates(codes, "code", problems)
    levels, areas, teams = _levels(df, problems)
    report = ImportReport("departments")
    with engine.begin() as conn:
        known = {r[0] for r in conn.execute(text("SELECT code FROM department"))}
        for i, parent in enumerate(parents):
            if parent and parent not in known and parent not in set(codes):
                problems.add(i + 1, "parent_code", f"parent department {parent} does not exist")
        problems.raise_if_any()
        stage(conn, "department", COLUMNS, [plain(codes), escape_text(names),
                                            [p or "\\N" for p in escape_text(parents)],
                                            [c or "\\N" for c in escape_text(contacts)],
                                            [v or "\\N" for v in levels],
                                            [v or "\\N" for v in areas], teams],
              "stage_department")
        rows = conn.execute(text(
            "INSERT INTO department (code, name, parent_code, contact, level, area_code, "
            "level_team) SELECT code, name, parent_code, contact, level, area_code, "
            "level_team FROM stage_department "
            "ON CONFLICT (code) DO UPDATE SET name = excluded.name, "
            "parent_code = excluded.parent_code, contact = excluded.contact, "
            "level = excluded.level, area_code = excluded.area_code, "
            "level_team = excluded.level_team "
            "RETURNING (xmax = 0)")).scalars().all()
    report.inserted = sum(1 for r in rows if r)
    report.updated = len(rows) - report.inserted
    return report


def import_departments(engine: Engine, path: str | Path) -> ImportReport:
    df = read_csv_table(path, f"departments file {Path(path).name}", ("code", "name"))
    return load_departments(engine, df)
