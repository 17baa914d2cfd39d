"""9+X personal data never leaves through features, tiles or exports (only the audited,
purpose-stated entity read may show it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mapbox_vector_tile
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridcore.cli import app as cli
from tests.support.security import admin_headers

LON, LAT = 116.4021, 39.9021
SECRETS = ("320582199001011234", "13812345678", "张三丰", "平江路88号")


def _plant(db: Engine) -> None:
    person = {"姓名": "张三丰", "id_number": SECRETS[0], "phone": SECRETS[1],
              "address": "苏州市姑苏区平江路88号"}
    with db.begin() as conn:
        conn.execute(text(
            "INSERT INTO governance_entity (code, area, type, name, grid_code, sensitivity, "
            "attributes, restricted_attributes, geom) VALUES ('E-LEAK', 'P02', 'resident', "
            "'住户', '110101001001001', 'internal', '{\"household\": 3}', CAST(:r AS jsonb), "
            "ST_SetSRID(ST_MakePoint(:x, :y), 4326))"),
            {"r": json.dumps(person, ensure_ascii=False), "x": LON, "y": LAT})


def _tile(z: int) -> tuple[int, int, int]:
    n = 2 ** z
    x = int((LON + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(LAT))) / math.pi) / 2 * n)
    return z, x, y


def _clean(body: bytes) -> bool:
    return not any(s.encode() in body for s in SECRETS)


def test_features_and_tiles_carry_no_personal_data(client: TestClient, db: Engine) -> None:
    _plant(db)
    items = client.get("/collections/entities/items")
    assert items.status_code == 200 and "E-LEAK" in items.text and _clean(items.content)
    one = client.get("/collections/entities/items/E-LEAK")
    assert one.status_code in (200, 404) and _clean(one.content)
    z, x, y = _tile(16)
    tile = client.get(f"/collections/entities/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert tile.status_code == 200 and _clean(tile.content)
    layers = mapbox_vector_tile.decode(tile.content)
    codes = {f["properties"].get("code") for layer in layers.values()
             for f in layer["features"]}
    assert "E-LEAK" in codes  # the entity is on the tile, its personal data is not
    masked = client.get("/entities/E-LEAK", headers=admin_headers(client.app, db, False))
    assert masked.status_code == 200 and _clean(masked.content)


def test_exports_carry_no_personal_data(db: Engine, cli_env: dict[str, str],
                                        tmp_path: Path) -> None:
    _plant(db)
    for fmt in ("geojson", "csv"):
        out = tmp_path / f"entities.{fmt}"
        result = CliRunner().invoke(cli, ["export", "entities", "-o", str(out)], env=cli_env)
        assert result.exit_code == 0, result.output
        body = out.read_bytes()
        assert b"E-LEAK" in body and _clean(body), fmt
