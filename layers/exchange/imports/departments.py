"""Departments (部门): code, name, parent code, contact — from a plain CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, text

from layers.db.copy import escape_text, plain
from layers.exchange.imports.common import flag_duplicates, stage
from layers.exchange.imports.reading import read_csv_table
from layers.exchange.imports.report import ImportReport, Problems, refuse_database_errors

COLUMNS = ["code", "name", "parent_code", "contact"]


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
    report = ImportReport("departments")
    with engine.begin() as conn:
        known = {r[0] for r in conn.execute(text("SELECT code FROM department"))}
        for i, parent in enumerate(parents):
            if parent and parent not in known and parent not in set(codes):
                problems.add(i + 1, "parent_code", f"parent department {parent} does not exist")
        problems.raise_if_any()
        stage(conn, "department", COLUMNS, [plain(codes), escape_text(names),
                                            [p or "\\N" for p in escape_text(parents)],
                                            [c or "\\N" for c in escape_text(contacts)]],
              "stage_department")
        rows = conn.execute(text(
            "INSERT INTO department (code, name, parent_code, contact) "
            "SELECT code, name, parent_code, contact FROM stage_department "
            "ON CONFLICT (code) DO UPDATE SET name = excluded.name, "
            "parent_code = excluded.parent_code, contact = excluded.contact "
            "RETURNING (xmax = 0)")).scalars().all()
    report.inserted = sum(1 for r in rows if r)
    report.updated = len(rows) - report.inserted
    return report


def import_departments(engine: Engine, path: str | Path) -> ImportReport:
    df = read_csv_table(path, f"departments file {Path(path).name}", ("code", "name"))
    return load_departments(engine, df)
