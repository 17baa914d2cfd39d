"""Grid workers (网格员) and their grids, from a plain CSV: code, name, phone, active, grids.

``grids`` lists the 15-digit codes of the current unit grids a worker walks (separated by ``;``
or spaces). Each grid named in the file gets exactly the workers that name it; grids the file
does not name keep their workers. Assigning people is not a redraw, so it updates the current
grid rows in place instead of opening a grid generation.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, text

from layers.db.copy import escape_text, plain
from layers.exchange.imports.common import flag_duplicates, stage
from layers.exchange.imports.reading import read_csv_table
from layers.exchange.imports.report import ImportReport, Problems, refuse_database_errors

COLUMNS = ["code", "name", "phone", "active"]
TRUE = {"", "1", "true", "yes", "y", "t"}
FALSE = {"0", "false", "no", "n", "f"}


@refuse_database_errors("workers")
def load_workers(engine: Engine, df: pd.DataFrame) -> ImportReport:
    what = "workers"
    problems = Problems(what)
    col = {c: (df[c].astype(str).str.strip().tolist() if c in df.columns else [""] * len(df))
           for c in ("code", "name", "phone", "active", "grids")}
    codes = pd.Series(col["code"], dtype=object).to_numpy()
    active = []
    for i, code in enumerate(codes):
        if not code or len(code) > 32 or not code.isprintable() or " " in code:
            problems.add(i + 1, "code", f"worker code {code!r} must be 1–32 characters "
                                        "without spaces")
        if not col["name"][i]:
            problems.add(i + 1, "name", "empty name")
        flag = col["active"][i].lower()
        if flag not in TRUE | FALSE:
            problems.add(i + 1, "active", f"active {col['active'][i]!r} must be yes or no")
        active.append("false" if flag in FALSE else "true")
    flag_duplicates(codes, "code", problems)
    assigned: dict[str, list[str]] = {}
    for i, cell in enumerate(col["grids"]):
        for grid in filter(None, re.split(r"[;,\s]+", cell)):
            assigned.setdefault(grid, []).append(codes[i])
    report = ImportReport("workers")
    with engine.begin() as conn:
        current = {r[0] for r in conn.execute(text(
            "SELECT code FROM unit_grid WHERE gen_to IS NULL AND code = ANY(:c)"),
            {"c": sorted(assigned)})}
        for i, cell in enumerate(col["grids"]):
            for grid in filter(None, re.split(r"[;,\s]+", cell)):
                if grid not in current:
                    problems.add(i + 1, "grids", f"unit grid {grid} is not a current grid")
        problems.raise_if_any()
        stage(conn, "grid_worker", COLUMNS,
              [plain(codes), escape_text(col["name"]),
               [p or "\\N" for p in escape_text(col["phone"])], active], "stage_worker")
        rows = conn.execute(text(
            "INSERT INTO grid_worker (code, name, phone, active) "
            "SELECT code, name, phone, active FROM stage_worker ON CONFLICT (code) DO UPDATE "
            "SET name = excluded.name, phone = excluded.phone, active = excluded.active "
            "RETURNING (xmax = 0)")).scalars().all()
        if assigned:
            conn.execute(text(
                "UPDATE unit_grid g SET worker_codes = "
                "CAST(string_to_array(s.list, chr(31)) AS varchar(32)[]) "
                "FROM (SELECT unnest(CAST(:grids AS text[])) AS code, "
                "unnest(CAST(:workers AS text[])) AS list) s "
                "WHERE g.code = s.code AND g.gen_to IS NULL"),
                {"grids": list(assigned),
                 "workers": ["\x1f".join(w) for w in assigned.values()]})
    report.inserted = sum(1 for r in rows if r)
    report.updated = len(rows) - report.inserted
    return report


def import_workers(engine: Engine, path: str | Path) -> ImportReport:
    df = read_csv_table(path, f"workers file {Path(path).name}", ("code", "name"))
    return load_workers(engine, df)
