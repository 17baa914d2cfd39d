"""gridcore grids draw: unit grids drawn from a line network and stored as grid generations."""

from __future__ import annotations

import geopandas as gpd
import shapely
import shapely.affinity

from tests.support.drawing import COMMUNITIES, NETWORK


# -- gridcore grids draw on PostGIS: a redraw is a new generation --------------------------------
def test_cli_draw_stores_generations(db, cli_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text
    from typer.testing import CliRunner

    from gridcore.cli import app
    from layers.exchange.imports import load_areas

    district = shapely.union_all(COMMUNITIES.geometry.values)
    parents = gpd.GeoDataFrame({"code": ["990101", "990101001"], "name": ["区", "街道"]},
                               geometry=[district, district], crs=4326)
    load_areas(db, parents)
    load_areas(db, COMMUNITIES.assign(name=["A", "B"]), level="community")
    network = tmp_path / "roads.geojson"
    NETWORK.to_frame("geometry").to_file(network)

    def draw(*args: str) -> str:
        result = CliRunner().invoke(app, ["grids", "draw", "--network", str(network), *args],
                                    env=cli_env)
        assert result.exit_code == 0, result.output
        return result.output

    def rows() -> list[tuple]:  # type: ignore[type-arg]
        with db.connect() as conn:
            return conn.execute(text("SELECT code, id, gen_from, gen_to FROM unit_grid "
                                     "ORDER BY id")).all()

    assert "8 unit grids in 2 communities" in draw()
    first = rows()
    assert len(first) == 8 and {r.gen_from for r in first} == {1}
    # same input: nothing changes, so no generation is opened (issue 19, item 7)
    assert "nothing changed: no new generation" in draw()
    assert rows() == first
    communities = tmp_path / "communities.geojson"
    COMMUNITIES.to_file(communities)
    out = draw("--communities", str(communities), "--target-area", "5000")
    redrawn = rows()
    assert "generation 2 (8 closed" in out
    closed = [r for r in redrawn if r.gen_to is not None]
    assert [(r.code, r.id) for r in closed] == [(r.code, r.id) for r in first]
    assert all(r.gen_to == 2 for r in closed)
    current = [r for r in redrawn if r.gen_to is None]
    assert len(current) > 8 and all(r.gen_from == 2 for r in current)

