"""gridcore check: the topology of the stored unit grids from the command line."""

from __future__ import annotations

import json

import geopandas as gpd
from typer.testing import CliRunner

from gridcore.cli import app
from layers.exchange.imports import load_areas, load_grids
from tests.support.coverage import CLEAN, OVERLAPPING, SHORT, areas_frame


def test_gridcore_check_command(db, cli_env) -> None:  # noqa: ANN001
    runner = CliRunner()
    load_areas(db, areas_frame())
    load_grids(db, gpd.GeoDataFrame({"community_code": ["310101001001"] * 2},
                                    geometry=CLEAN, crs=4326))
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "checked 2 unit grids in 1 communities" in result.output
    assert "no problems" in result.output
    load_grids(db, gpd.GeoDataFrame({"community_code": ["310101001001"] * 2},
                                    geometry=[OVERLAPPING, SHORT], crs=4326))
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 1
    assert "1 gap, 1 overlap" in result.output
    assert "overlap            310101001001001 / 310101001001002" in result.output
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False and data["counts"] == {"overlap": 1, "gap": 1}
    assert {p["kind"] for p in data["problems"]} == {"overlap", "gap"}
    assert all(p["area_m2"] > 100 for p in data["problems"])

