"""Small planted data for the one-map tests (一张图): a community in central Helsinki with
a 3 × 2 block of unit grids (≈ 110 m squares), city parts, 9+X entities and cases.

Planted with SQL so the tests need neither the demo nor the import code. The grid geometry is
arithmetic on purpose: a test can say exactly which tile and which bbox holds which grid.
"""

from __future__ import annotations

import h3
from sqlalchemy import Engine, text

LON0, LAT0 = 24.9400, 60.1680  # south-west corner of the block
DLON, DLAT = 0.0020, 0.0010  # one grid: ~111 m east-west, ~111 m north-south
COMMUNITY = "110101001001"
GRID_CODES = [f"{COMMUNITY}{i:03d}" for i in range(1, 7)]
PARTS = [  # code, class, state, lon, lat
    ("1101010101000001", "0101", "intact", 24.9405, 60.1685),
    ("1101010101000002", "0101", "damaged", 24.9425, 60.1685),
    ("1101010120000001", "0120", "intact", 24.9445, 60.1695),
    ("1101010204000001", "0204", "missing", 24.9410, 60.1696),
]
# id, category, state, lon, lat, clock: warn/deadline relative to now (hours)
CASES = [
    (1, "E0103", "dispatched", 24.9402, 60.1682, (+2, +3)),  # green
    (2, "E0102", "dispatched", 24.9422, 60.1683, (-1, +1)),  # yellow
    (3, "P0101", "dispatched", 24.9443, 60.1692, (-3, -1)),  # red
    (4, "E0103", "closed", 24.9412, 60.1694, (-3, -1)),  # closed: none
]


def grid_square(i: int) -> tuple[float, float, float, float]:
    col, row = i % 3, i // 3
    x0, y0 = LON0 + col * DLON, LAT0 + row * DLAT
    return x0, y0, x0 + DLON, y0 + DLAT


def plant(engine: Engine, cases: bool = True) -> None:
    with engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2) VALUES
            ('110101', 'district', 'Keskusta', NULL, ST_Multi(ST_MakeEnvelope(24.93, 60.16,
                24.96, 60.18, 4326)), 1),
            ('110101001', 'street', 'Kluuvi', '110101', ST_Multi(ST_MakeEnvelope(24.935,
                60.165, 24.955, 60.175, 4326)), 1),
            (:c, 'community', 'Kluuvi-1', '110101001', ST_Multi(ST_MakeEnvelope(24.94, 60.168,
                24.946, 60.170, 4326)), 1);
            INSERT INTO grid_generation (id, note) VALUES (1, 'first'), (2, 'redrawn');
            INSERT INTO grid_worker (code, name) VALUES ('W001', 'Aino'), ('W002', 'Eero');
            INSERT INTO department (code, name) VALUES ('D-WATER', 'Water works'),
                ('D-CLEAN', 'City cleaning');
        """), {"c": COMMUNITY})
        for i, code in enumerate(GRID_CODES):
            x0, y0, x1, y1 = grid_square(i)
            conn.execute(text(
                "INSERT INTO unit_grid (code, name, community_code, geom, area_m2, "
                "worker_codes, gen_from) VALUES (:code, :name, :c, "
                "ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)), 12300, :w, 2)"),
                {"code": code, "name": f"Grid {i + 1}", "c": COMMUNITY, "x0": x0, "y0": y0,
                 "x1": x1, "y1": y1, "w": ["W001" if i < 3 else "W002"]})
        # An old generation of grid 001: must not be served as current.
        conn.execute(text(
            "INSERT INTO unit_grid (code, name, community_code, geom, area_m2, gen_from, "
            "gen_to) VALUES (:code, 'old', :c, ST_Multi(ST_MakeEnvelope(24.93, 60.16, 24.931, "
            "60.161, 4326)), 1, 1, 2)"), {"code": GRID_CODES[0], "c": COMMUNITY})
        for code, cls, state, lon, lat in PARTS:
            conn.execute(text(
                "INSERT INTO city_part (code, class_code, name, state, grid_code, geom, "
                "competent_dept) VALUES (:code, :cls, :name, :state, :grid, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 'D-WATER')"),
                {"code": code, "cls": cls, "name": f"part {code[-1]}", "state": state,
                 "grid": grid_of(lon, lat), "lon": lon, "lat": lat})
        conn.execute(text("""
            INSERT INTO governance_entity (code, area, type, name, grid_code, sensitivity,
                attributes, restricted_attributes, geom) VALUES
            ('ENT-1', '02', 'household', 'Household 1', :g, 'restricted',
             '{"members": 3}', '{"id_card": "110101199001011234", "phone": "13800000000"}',
             ST_SetSRID(ST_MakePoint(24.9407, 60.1684), 4326)),
            ('ENT-2', '08', 'school', 'Kluuvi school', :g, 'public', '{}', '{}',
             ST_SetSRID(ST_MakePoint(24.9415, 60.1688), 4326))
        """), {"g": GRID_CODES[0]})
    if cases:
        plant_cases(engine)


def grid_of(lon: float, lat: float) -> str:
    col, row = int((lon - LON0) / DLON), int((lat - LAT0) / DLAT)
    return GRID_CODES[row * 3 + col]


def plant_cases(engine: Engine, rows: list[tuple] | None = None) -> None:
    with engine.begin() as conn:
        for cid, cat, state, lon, lat, (warn_h, due_h) in rows or CASES:
            conn.execute(text(
                "INSERT INTO case_record (id, idempotency_key, payload_hash, category_key, "
                "description, geom, input_x, input_y, grid_code, community_code, h3, state, "
                "department_code, stage, warn_at, deadline_at, created_at, closed_at) VALUES "
                "(:id, :key, repeat('0', 64), :cat, :desc, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :lon, :lat, :grid, :c, :h3, "
                ":state, 'D-CLEAN', 'handle', now() + make_interval(hours => :w), "
                "now() + make_interval(hours => :d), now() - interval '5 hours', "
                "CASE WHEN :state = 'closed' THEN now() END)"),
                {"id": cid, "key": f"planted-{cid}", "cat": cat, "desc": f"case {cid}",
                 "lon": lon, "lat": lat, "grid": grid_of(lon, lat), "c": COMMUNITY,
                 "h3": h3.latlng_to_cell(lat, lon, 10), "state": state, "w": warn_h,
                 "d": due_h})
            conn.execute(text(
                "INSERT INTO case_history (case_id, actor, role, action, from_state, to_state) "
                "VALUES (:id, 'planted', 'system', 'report', NULL, :state)"),
                {"id": cid, "state": state})
        conn.execute(text(
            "SELECT setval('case_record_id_seq', (SELECT max(id) FROM case_record))"))
