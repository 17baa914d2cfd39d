"""A planted city over the real Helsinki extract for the channel tests: one district, street and
community over the extract's bounding box cut into 3 × 3 unit grids, departments by level
(district, street, community), dispatch rules, and the real addresses, named places and streets
of the PBF (``gridcore import addresses``), plus planted Chinese addresses and street lines."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from tests.support.data import shared_file

PBF = "helsinki/Helsinki.osm.pbf"
BBOX = (24.935, 60.164, 24.953, 60.179)
DISTRICT, STREET, COMMUNITY = "990101", "990101001", "990101001001"
_SQUARE = "ST_Multi(ST_MakeEnvelope({}, {}, {}, {}, 4326))"


def grid_code(row: int, col: int) -> str:
    return f"{COMMUNITY}{row * 3 + col + 1:03d}"


def _plant_sql() -> str:
    x0, y0, x1, y1 = BBOX
    dx, dy = (x1 - x0) / 3, (y1 - y0) / 3
    grids = ",\n".join(
        f"('{grid_code(r, c)}', 'g{r}{c}', '{COMMUNITY}', "
        f"{_SQUARE.format(x0 + c * dx, y1 - (r + 1) * dy, x0 + (c + 1) * dx, y1 - r * dy)}, "
        f"1, 1, '{{W{r}{c}}}')" for r in range(3) for c in range(3))
    box = _SQUARE.format(*BBOX)
    return f"""
INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2) VALUES
 ('{DISTRICT}', 'district', 'Helsinki 区', NULL, {box}, 1),
 ('{STREET}', 'street', 'Kluuvi 街道', '{DISTRICT}', {box}, 1),
 ('{COMMUNITY}', 'community', 'Kaartinkaupunki 社区', '{STREET}', {box}, 1);
INSERT INTO grid_generation (id, note) VALUES (1, 'planted');
INSERT INTO unit_grid (code, name, community_code, geom, area_m2, gen_from, worker_codes)
VALUES {grids};
INSERT INTO department (code, name) VALUES ('D_CITY', '城管委'), ('D_WATER', '水务集团'),
 ('D_ROADS', '市政路灯所'), ('D_STREET', '街道城管科'), ('D_COMM', '社区工作站'),
 ('D_POLICE', '公安分局'), ('D_FIRE', '消防救援站');
INSERT INTO dispatch_rule (category_key, area_level, area_code, department_code) VALUES
 ('E0103', 'city', NULL, 'D_CITY'), ('E0101', 'city', NULL, 'D_CITY'),
 ('P0101', 'city', NULL, 'D_WATER'), ('P0102', 'city', NULL, 'D_WATER'),
 ('P0120', 'city', NULL, 'D_ROADS'), ('E0102', 'city', NULL, 'D_CITY');
"""


# Planted Chinese addresses inside the extract (lon, lat), and two Chinese street lines that
# cross at (24.9450, 60.1700).
CHINESE_CSV = """street,housenumber,name,lon,lat,source_id
建国路,88号,国贸大厦,24.9440,60.1700,zh-1
建国路,90号,,24.9443,60.1701,zh-2
建国门内大街,5号,,24.9460,60.1720,zh-3
东三环中路,1号,,24.9451,60.1690,zh-4
,,人民公园,24.9400,60.1660,zh-5
"""
CHINESE_LINES = """name,wkt
建国路,"LINESTRING(24.9400 60.1700, 24.9500 60.1700)"
东三环中路,"LINESTRING(24.9450 60.1650, 24.9450 60.1750)"
"""


def plant(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(_plant_sql()))


def import_helsinki_addresses(engine: Engine, tmp: Path) -> None:
    """The real PBF's addresses, places and streets, then the planted Chinese ones."""
    from layers.exchange.imports import import_addresses

    import_addresses(engine, shared_file(PBF))
    points = tmp / "zh_addresses.csv"
    points.write_text(CHINESE_CSV, encoding="utf-8")
    import_addresses(engine, points, source="planted-zh")
    lines = tmp / "zh_streets.csv"
    lines.write_text(CHINESE_LINES, encoding="utf-8")
    import_addresses(engine, lines, source="planted-zh-lines", crs="EPSG:4326")
