"""A planted case history for the intelligence tests: 60 weeks of a legacy system's cases in the
two planted grids (tests.support.cases), three classes each with its own words and its own
department, written as the CSV that ``gridcore import cases`` reads."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from layers.exchange.imports import CaseFields, ImportReport, import_cases
from tests.support.cases import INSIDE_001, INSIDE_002

# class → (words it is reported with, department that handled it, legacy type name)
CLASSES = {
    "E0103": (["路面脏乱", "道路有垃圾没人清扫", "马路上很脏", "路边垃圾成堆", "人行道脏污"],
              "D_GRID", "Dirty street"),
    "P0120": (["路灯不亮", "路灯坏了晚上很黑", "灯杆倒了", "路灯闪烁", "一排路灯都不亮"],
              "D_LAMP", "Lamp out"),
    "E0102": (["暴露垃圾没人管", "垃圾桶满了溢出", "垃圾堆放发臭", "小区门口垃圾乱扔",
               "生活垃圾随意丢弃"], "D_CITY", "Garbage"),
}
FIELDS = CaseFields(id_field="ticket", opened_field="opened", closed_field="closed",
                    text_fields=("title", "body"), category_field="type",
                    department_field="dept", state_field="status", notes_field="reply")
MAPPING = "kind,value,code\n" + "".join(
    f"category,{name},{key}\n" for key, (_, _, name) in CLASSES.items())
START = datetime(2024, 1, 1, 9, 0)


def history_file(folder: Path, *, weeks: int = 60, per_week: int = 6, seed: int = 1,
                 prefix: str = "H", noisy: bool = False, name: str = "history.csv") -> Path:
    """``per_week`` cases a week; lamps fail more in grid 001 in winter (a pattern to learn);
    ``noisy``: every case gets a random class and department (labels worth nothing)."""
    rng = random.Random(seed)
    keys = list(CLASSES)
    lines = ["ticket,opened,closed,title,body,type,dept,status,reply,lon,lat"]
    n = 0
    for week in range(weeks):
        winter = (week % 52) < 10 or (week % 52) > 44
        for _ in range(per_week + (3 if winter else 0)):
            key = "P0120" if winter and rng.random() < 0.5 else rng.choice(keys)
            words, dept, legacy = CLASSES[key]
            if noisy:
                key = rng.choice(keys)
                legacy, dept = CLASSES[key][2], CLASSES[rng.choice(keys)][1]
            lon, lat = INSIDE_001 if key == "P0120" and winter else rng.choice(
                [INSIDE_001, INSIDE_002])
            opened = START + timedelta(days=7 * week + rng.random() * 6.5)
            closed = opened + timedelta(hours=rng.randint(2, 72))
            title = rng.choice(words)
            body = f"{rng.choice(['东门', '西街', '北口', '南巷'])}{rng.randint(1, 99)}号附近"
            n += 1
            lines.append(f"{prefix}-{n},{opened:%Y-%m-%d %H:%M},{closed:%Y-%m-%d %H:%M},"
                         f"{title},{body},{legacy},{dept},Closed,已处理:{title},{lon},{lat}")
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def import_history(db: Engine, folder: Path, *, system: str = "old", **kw: object
                   ) -> ImportReport:
    mapping = folder / "intel_mapping.csv"
    mapping.write_text(MAPPING, encoding="utf-8")
    path = history_file(folder, **kw)  # type: ignore[arg-type]
    return import_cases(db, path, system=system, fields=FIELDS, mapping=mapping,
                        timezone="Asia/Shanghai")
