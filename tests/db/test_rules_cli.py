"""gridcore rules import | export: dispatch rules (权责清单) through the command line, round trip
and refusals."""

from __future__ import annotations

from sqlalchemy import text
from typer.testing import CliRunner

from gridcore.cli import app
from tests.support.database import row_counts


def test_cli_import_export_round_trip(db, cli_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.grids import load_grids, voronoi_grids

    codes = load_grids(db, voronoi_grids(5, km=1.0))
    with db.begin() as conn:
        conn.execute(text("INSERT INTO department (code, name) VALUES ('CITY', 'City works'), "
                          "('GRIDT', 'Grid team')"))
    good = tmp_path / "rules.csv"
    good.write_text("category_key,area_level,area_code,department_code,note\n"
                    "P0101,city,,CITY,fallback\n"
                    f"P0101,grid,{codes[0]},GRIDT,\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["rules", "import", str(good)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["rules", "export", "-o", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "category_key,area_level,area_code,department_code,note"
    assert sorted(lines[1:]) == sorted(["P0101,city,,CITY,fallback",
                                        f"P0101,grid,{codes[0]},GRIDT,"])
    before = row_counts(db)
    bad = tmp_path / "bad.csv"
    bad.write_text("category_key,area_level,area_code,department_code,note\n"
                   "P0101,street,110101999,CITY,\nE0101,city,,GHOST,\n", encoding="utf-8")
    result = runner.invoke(app, ["rules", "import", str(bad)])
    assert result.exit_code != 0
    assert "unreachable" in result.output and "GHOST" in result.output
    assert row_counts(db) == before

