"""The demo district's two years before gridcore (历史案卷): the closed cases of its previous
digital city-management system, brought in through the product's own legacy import
(``gridcore import cases``: a CSV in that system's words and a mapping table), as a city that
adopts gridcore does on its first day.

Why the demo has them: the models of 智能派遣 and 未诉先办 learn from history, and a forecast
needs ≥ 42 full weeks of it — the few months the demo runs through the lifecycle
(``demo.cases``) are too short, so without this history the dispatcher's map would show no
forecast and the desk few similar cases until a city had run gridcore for most of a year.

Synthetic demo data, no real person: invented reports and replies at real places and city parts,
with the patterns a real history has — fewer reports at weekends, street lamps failing more in
the long winter nights, garbage and litter bins in summer, trees in the autumn storms, a few
places where the same problem keeps coming back (the hot spots a patrol plan should find), and
slowly more reports as the system was used more. Departments follow the district's dispatch
rules (the 权责清单), with the few cases the city bureau took over itself.
"""

from __future__ import annotations

import csv
import math
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
from shapely import points
from sqlalchemy import Engine, text

from demo.cases import DAYS, EVENTS, PART_PROBLEMS, parts_by_class
from demo.org import (
    DEPARTMENTS,
    PART_DEPARTMENTS,
    SYNTHETIC,
    dept,
    event_dept,
    street_dept,
)
from demo.report_words import describe, reply
from gridcore.settings import Settings
from gridcore.taxonomy import Taxonomy
from layers.exchange.imports.cases import CaseFields, import_cases

SYSTEM = "数字城管一期 (demo)"
WEEKS = 104
PER_WEEK = 22.0  # reports a week at the start; the live months run at about this rate
GROWTH = 0.25  # more reports by the end of the two years (the system was used more)
HOT_SHARE, HOT_WEIGHT = 0.04, 12.0  # a few places draw many of their class's reports
WEEKDAY = (1.15, 1.1, 1.1, 1.1, 1.05, 0.7, 0.6)  # Monday … Sunday
# class → (month of its peak, strength): lamps in the dark months, rubbish in summer…
SEASON: dict[str, tuple[int, float]] = {
    "P0120": (12, 0.5), "P0304": (7, 0.4), "E0102": (7, 0.35), "E0103": (4, 0.25),
    "P0402": (10, 0.6), "E0502": (6, 0.3), "E0504": (5, 0.3), "P0110": (1, 0.5),
}
FIELDS = CaseFields(id_field="案卷编号", opened_field="上报时间", closed_field="结案时间",
                    text_fields=("问题描述",), category_field="问题类别",
                    department_field="处置部门", state_field="案卷状态", source_field="来源",
                    notes_field="处置意见")
SOURCE_WORDS = {"grid_worker": "监督员上报", "hotline": "12345热线", "citizen": "市民投诉"}


def _weight(key: str) -> float:
    return PART_PROBLEMS[key[1:]][1] if key.startswith("P") else EVENTS[key][1]


def _rates(keys: list[str], when: datetime, week: int) -> np.ndarray:
    """Expected reports of each class on one day."""
    weights = np.array([_weight(k) for k in keys])
    season = np.array([1 + SEASON[k][1] * math.cos(2 * math.pi * (when.month - SEASON[k][0]) / 12)
                       if k in SEASON else 1.0 for k in keys])
    trend = 1 + GROWTH * week / WEEKS
    return PER_WEEK / 7 * trend * WEEKDAY[when.weekday()] * weights / weights.sum() * season


def _department(key: str, street: str | None, rng: np.random.Generator) -> str:
    if key.startswith("P"):
        return dept(PART_DEPARTMENTS.get(key[1:], ("CG",) * 3)[2])
    tag = event_dept(key[1:])
    if tag == "CG" and street is not None and rng.random() > 0.06:
        return street_dept(street)  # the street's section first; the bureau took a few itself
    return dept(tag)


def _streets(grids: gpd.GeoDataFrame, x: np.ndarray, y: np.ndarray,
             streets: list[str]) -> list[str | None]:
    """The street each place lies in (its grid's community code begins with it)."""
    where = gpd.GeoDataFrame(geometry=points(x, y), crs=4326)
    hit = gpd.sjoin(where, grids[["community_code", "geometry"]], how="left",
                    predicate="within")
    hit = hit[~hit.index.duplicated()]
    out: list[str | None] = []
    for community in hit["community_code"]:
        out.append(next((s for s in streets if isinstance(community, str)
                         and community.startswith(s)), None))
    return out


def write_history(folder: Path, parts: dict[str, np.ndarray], grids: gpd.GeoDataFrame,
                  streets: list[str], end: datetime, seed: int = 20240301) -> tuple[Path, Path]:
    """The legacy system's export (CSV in its own words) and the mapping table gridcore needs
    for it; ``end`` is when the legacy system stopped (the demo's live months begin)."""
    rng = np.random.default_rng(seed)
    taxonomy = Taxonomy.default()
    keys = list(PART_PROBLEMS) + list(EVENTS)
    keys = [f"P{k}" if k in PART_PROBLEMS else k for k in keys]
    raw = [k[1:] if k.startswith("P") else k for k in keys]
    hot = {c: rng.random(len(pool)) < HOT_SHARE for c, pool in parts.items()}
    rows: list[dict[str, str]] = []
    start = end - timedelta(weeks=WEEKS)
    for day in range(WEEKS * 7):
        when = start + timedelta(days=day)
        for key, r, n in zip(keys, raw, rng.poisson(_rates(keys, when, day // 7)), strict=True):
            for _ in range(int(n)):
                rows.append(_row(rng, taxonomy, parts, hot, key, r, when))
    rows.sort(key=lambda row: row["上报时间"])
    x = np.array([float(r["经度"]) for r in rows])
    y = np.array([float(r["纬度"]) for r in rows])
    for i, (row, street) in enumerate(zip(rows, _streets(grids, x, y, streets), strict=True)):
        row["案卷编号"] = f"SZCG-{row['上报时间'][:4]}-{i + 1:06d}"
        if row["案卷状态"] == "已结案":
            row["处置部门"] = _dept_name(_department(row.pop("_key"), street, rng))
        else:
            row.pop("_key")
    data = folder / "legacy_cases.csv"
    with data.open("w", newline="", encoding="utf-8") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    mapping = folder / "legacy_mapping.csv"
    with mapping.open("w", newline="", encoding="utf-8") as f:
        table = csv.writer(f)
        table.writerow(["kind", "value", "code"])
        table.writerows(("category", taxonomy.get(k).name_zh, k) for k in keys)
        table.writerows(("department", _dept_name(code), code) for code in sorted(
            {*(dept(t) for t, _, _ in DEPARTMENTS), *(street_dept(s) for s in streets)}))
        table.writerows(("source", word, source) for source, word in SOURCE_WORDS.items())
    return data, mapping


def _dept_name(code: str) -> str:
    """How the old system named a department (its own words, mapped back by the table)."""
    names = {dept(t): n for t, n, _ in DEPARTMENTS}
    return names.get(code) or f"{code.removesuffix('-CGK')}街道城管科"


def _row(rng: np.random.Generator, taxonomy: Taxonomy, parts: dict[str, np.ndarray],
         hot: dict[str, np.ndarray], key: str, raw: str, day: datetime) -> dict[str, str]:
    beside = raw if key.startswith("P") else EVENTS[raw][2]
    beside = beside if beside in parts else "0120"
    pool = parts[beside]
    weights = np.where(hot[beside], HOT_WEIGHT, 1.0)
    code, x, y = pool[rng.choice(len(pool), p=weights / weights.sum())]
    jitter = 2.0 if key.startswith("P") else 12.0
    dx, dy = rng.normal(0, jitter, 2)
    lon = x + dx / (111_320 * math.cos(math.radians(y)))
    lat = y + dy / 110_574
    opened = day.replace(hour=7) + timedelta(minutes=float(rng.uniform(0, 12 * 60)))
    source = rng.choice(list(SOURCE_WORDS), p=[0.62, 0.3, 0.08])
    voided = rng.random() < 0.03
    hours = (float(rng.uniform(0.3, 2)) if voided
             else float(rng.lognormal(math.log(30 if key.startswith("P") else 8), 0.8)))
    return {"_key": key, "案卷编号": "", "上报时间": opened.isoformat(timespec="minutes"),
            "结案时间": (opened + timedelta(hours=hours)).isoformat(timespec="minutes"),
            "问题描述": f"{describe(rng, key, code if key.startswith('P') else None)}"
                        f" — {SYNTHETIC}",
            "问题类别": taxonomy.get(key).name_zh, "处置部门": "",
            "案卷状态": "已作废" if voided else "已结案", "来源": SOURCE_WORDS[str(source)],
            "处置意见": "现场核实无此问题，作废 not found on site, voided" if voided
            else reply(rng, key), "经度": f"{lon:.7f}", "纬度": f"{lat:.7f}"}


def import_history(engine: Engine, settings: Settings, grids: gpd.GeoDataFrame,
                   streets: list[str], step: Callable[[str], None]) -> int:
    """Write the legacy export and bring it in with ``gridcore import cases``'s code; returns
    the number of legacy cases stored. The history is dated back from the day of the first
    build, so a later run (a rebuild, a completed interruption, another day) finds it stored
    and leaves it as it is — one import is one transaction: it is all there or not at all."""
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM case_record WHERE source_system = :s"),
                              {"s": SYSTEM}).scalar_one()
    if stored:
        step(f"legacy history: {stored} cases of {SYSTEM} already imported")
        return int(stored)
    tz = ZoneInfo(settings.cases.city_timezone)
    today = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    end = today - timedelta(days=DAYS)
    with tempfile.TemporaryDirectory(prefix="gridcore-demo-legacy-") as folder:
        data, mapping = write_history(Path(folder), parts_by_class(engine), grids, streets, end)
        report = import_cases(engine, data, system=SYSTEM, fields=FIELDS, mapping=mapping,
                              timezone=settings.cases.city_timezone, lon_field="经度",
                              lat_field="纬度", actor="demo",
                              h3_resolution=settings.h3_resolution)
    step(f"legacy history: {report.inserted} cases imported — {WEEKS} weeks of the district's "
         f"previous system ({SYSTEM}, {SYNTHETIC}) up to {end:%Y-%m-%d}, through the case "
         "import" + "".join(f"; {note}" for note in report.notes))
    return report.inserted
