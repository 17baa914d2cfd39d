"""The demo city's organisation — synthetic demo data, no real person or body.

Departments (部门), who owns and maintains each city-part class (权属 / 养护), the dispatch
rules of the event classes (权责清单: category → department), one grid worker (网格员) per
community. Codes are ``990101-XX`` (the synthetic demo district + a short department tag).
"""

from __future__ import annotations

import pandas as pd

from demo.areas import DISTRICT_CODE

SYNTHETIC = "synthetic demo data, no real person"

DEPARTMENTS: list[tuple[str, str, str | None]] = [
    ("CY", "城市运行管理中心", None),  # City operations centre
    ("CG", "城市管理局", "CY"),  # Urban management bureau
    ("SZ", "市政工程管理处", "CG"),  # Municipal engineering office
    ("LD", "路灯管理所", "SZ"),  # Street lighting office
    ("HW", "环境卫生管理处", "CG"),  # Sanitation office
    ("YL", "园林绿化局", "CY"),  # Parks and greening bureau
    ("SW", "水务集团", "CY"),  # Water company
    ("RQ", "燃气集团", "CY"),  # Gas company
    ("DL", "供电公司", "CY"),  # Power company
    ("TX", "通信运营商", "CY"),  # Telecom operator
    ("RL", "热力公司", "CY"),  # District heating company
    ("JT", "交通运输局", "CY"),  # Transport bureau
    ("JJ", "交警大队", "CY"),  # Traffic police
    ("GA", "公安分局", "CY"),  # Public security bureau
    ("XF", "消防救援大队", "CY"),  # Fire and rescue
    ("YZ", "邮政公司", "CY"),  # Post office
    ("SC", "市场监督管理局", "CY"),  # Market supervision bureau
    ("ZJ", "住房和城乡建设局", "CY"),  # Housing and construction bureau
]

# city-part class → (competent 主管, owner 权属, maintenance 养护) department tags
PART_DEPARTMENTS: dict[str, tuple[str, str, str]] = {
    "0101": ("SZ", "SW", "SW"), "0102": ("SZ", "SW", "SW"), "0103": ("SZ", "SW", "SZ"),
    "0105": ("SZ", "DL", "DL"), "0106": ("JT", "JT", "JT"), "0107": ("SZ", "TX", "TX"),
    "0110": ("SZ", "RL", "RL"), "0111": ("SZ", "RQ", "RQ"), "0113": ("SZ", "SZ", "SZ"),
    "0115": ("SZ", "DL", "DL"), "0117": ("XF", "XF", "SW"), "0120": ("SZ", "LD", "LD"),
    "0122": ("CG", "YZ", "YZ"), "0125": ("JT", "DL", "DL"), "0201": ("JT", "JT", "JT"),
    "0204": ("JJ", "JJ", "JJ"), "0206": ("JJ", "JJ", "SZ"), "0215": ("JT", "JT", "CG"),
    "0301": ("CG", "HW", "HW"), "0304": ("CG", "HW", "HW"), "0305": ("CG", "HW", "HW"),
    "0306": ("CG", "HW", "HW"), "0310": ("SC", "SC", "SC"), "0313": ("YL", "YL", "YL"),
    "0402": ("YL", "YL", "YL"), "0601": ("GA", "GA", "GA"),
}

# event major class → department tag (the city-wide default of the 权责清单)
EVENT_MAJOR_DEPARTMENT = {"01": "CG", "02": "CG", "03": "ZJ", "04": "SZ", "05": "CG"}
EVENT_DEPARTMENT = {"0402": "SW", "0403": "RQ", "0405": "YL", "0503": "JJ", "0505": "JJ"}


def dept(tag: str) -> str:
    return f"{DISTRICT_CODE}-{tag}"


def street_dept(street_code: str) -> str:
    """The urban-management section (城管科) of a street office."""
    return f"{street_code}-CGK"


def departments_frame(street_codes: list[str]) -> pd.DataFrame:
    rows = [(dept(t), n, dept(p) if p else "") for t, n, p in DEPARTMENTS]
    # each street's urban-management section; names in the city's own language only (the
    # pages show them as data in either language: an English gloss in the name was cut off)
    rows += [(street_dept(s), f"{s} 街道城管科", dept("CG")) for s in street_codes]
    return pd.DataFrame({
        "code": [r[0] for r in rows], "name": [r[1] for r in rows],
        "parent_code": [r[2] for r in rows],
        "contact": [f"12345 转 {i:03d} ({SYNTHETIC})" for i in range(1, len(rows) + 1)],
    })


def part_departments(class_codes: pd.Series) -> pd.DataFrame:
    """competent_dept / owner_dept / maintenance_dept columns for the given part classes."""
    triples = class_codes.map(lambda c: PART_DEPARTMENTS.get(c, ("CG", "CG", "CG")))
    return pd.DataFrame({
        "competent_dept": [dept(t[0]) for t in triples],
        "owner_dept": [dept(t[1]) for t in triples],
        "maintenance_dept": [dept(t[2]) for t in triples],
    }, index=class_codes.index)


def event_dept(code: str) -> str:
    """The department tag an event class goes to city-wide (its 权责清单 line)."""
    return EVENT_DEPARTMENT.get(code, EVENT_MAJOR_DEPARTMENT.get(code[:2], "CG"))


def dispatch_rules(part_classes: list[str], event_classes: list[str],
                   street_codes: list[str]) -> pd.DataFrame:
    """City-wide rules: part classes → their maintenance unit, events → by class; cityscape
    events first go to the street's urban-management section (the city bureau takes what a
    section sends back)."""
    rows = [{"category_key": f"P{c}", "area_level": "city", "area_code": None,
             "department_code": dept(PART_DEPARTMENTS.get(c, ("CG",) * 3)[2]),
             "note": "demo: maintenance unit of the part class"} for c in part_classes]
    rows += [{"category_key": f"E{c}", "area_level": "city", "area_code": None,
              "department_code": dept(event_dept(c)), "note": "demo: by event class"}
             for c in event_classes]
    rows += [{"category_key": f"E{c}", "area_level": "street", "area_code": s,
              "department_code": street_dept(s), "note": "demo: street section first"}
             for c in event_classes if event_dept(c) == "CG" for s in street_codes]
    return pd.DataFrame(rows)


def worker_code(community_code: str) -> str:
    return f"W{community_code}"


def workers_frame(community_codes: list[str]) -> pd.DataFrame:
    return pd.DataFrame({
        "code": [worker_code(c) for c in community_codes],
        "name": [f"演示网格员 Demo worker {n:02d} ({SYNTHETIC})"
                 for n in range(1, len(community_codes) + 1)],
        "phone": [f"000-0000-{n:04d}" for n in range(1, len(community_codes) + 1)],
    })
