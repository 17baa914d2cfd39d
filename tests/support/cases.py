"""A small planted city for the case tests: one district / street / community, two grids,
departments, dispatch rules and one street lamp (a city part with its maintenance unit)."""

from __future__ import annotations

import base64
import io
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text

from gridcore.settings import CaseSettings

SH = ZoneInfo("Asia/Shanghai")
# Grid 001: lon 116.400–116.405, grid 002: 116.405–116.410; lat 39.900–39.905.
INSIDE_001 = (116.4020, 39.9020)
INSIDE_002 = (116.4080, 39.9020)
LAMP = (116.4030, 39.9030)
OUTSIDE = (116.5000, 39.9500)
GRID_001 = "110101001001001"
GRID_002 = "110101001001002"

_SQUARE = "ST_Multi(ST_MakeEnvelope({}, {}, {}, {}, 4326))"
PLANT_SQL = f"""
INSERT INTO admin_area (code, level, name, parent_code, geom, area_m2) VALUES
 ('110101', 'district', '东城区', NULL, {_SQUARE.format(116.39, 39.89, 116.42, 39.92)}, 1),
 ('110101001', 'street', '东华门街道', '110101', {_SQUARE.format(116.39, 39.89, 116.42, 39.92)}, 1),
 ('110101001001', 'community', '多福巷社区', '110101001',
  {_SQUARE.format(116.40, 39.90, 116.41, 39.905)}, 1);
INSERT INTO grid_generation (id, note) VALUES (1, 'planted');
INSERT INTO unit_grid (code, name, community_code, geom, area_m2, gen_from, worker_codes) VALUES
 ('{GRID_001}', 'west', '110101001001', {_SQUARE.format(116.40, 39.90, 116.405, 39.905)},
  1, 1, '{{W1}}'),
 ('{GRID_002}', 'east', '110101001001', {_SQUARE.format(116.405, 39.90, 116.41, 39.905)},
  1, 1, '{{W2}}');
INSERT INTO department (code, name) VALUES ('D_CITY', '城管委'), ('D_STREET', '街道城管科'),
 ('D_GRID', '网格保洁队'), ('D_ROADS', '市政路灯所'), ('D_LAMP', '路灯维护公司'),
 ('D_WATER', '水务集团');
INSERT INTO dispatch_rule (category_key, area_level, area_code, department_code) VALUES
 ('E0103', 'city', NULL, 'D_CITY'), ('E0103', 'street', '110101001', 'D_STREET'),
 ('E0103', 'grid', '{GRID_001}', 'D_GRID'), ('P0120', 'city', NULL, 'D_ROADS'),
 ('E0102', 'city', NULL, 'D_CITY'), ('P0101', 'city', NULL, 'D_WATER');
INSERT INTO city_part (code, class_code, name, maintenance_dept, owner_dept, grid_code, geom)
VALUES ('1101010120000001', '0120', '路灯 1', 'D_LAMP', 'D_ROADS', '{GRID_001}',
        ST_SetSRID(ST_MakePoint({LAMP[0]}, {LAMP[1]}), 4326));
"""


def plant(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(PLANT_SQL))


def settings(tmp: Path, **kw: object) -> CaseSettings:
    return CaseSettings(media_dir=tmp / "media", open311_api_keys="k-test", **kw)


def key() -> str:
    return uuid.uuid4().hex


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def png_bytes(size: int = 8) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


FAKE_JPEG = b"\xff\xd8\xff\xe0" + base64.b64encode(b"not really an image" * 10)


def report(point=INSIDE_001, category="E0103", **kw):  # type: ignore[no-untyped-def]
    body = {"idempotency_key": key(), "category": category, "lon": point[0], "lat": point[1],
            "description": "路面有油污", "source": "grid_worker", "reporter": "W1"}
    body.update(kw)
    return body
