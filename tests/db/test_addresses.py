"""The address layer: ``gridcore import addresses`` from the real Helsinki PBF (addresses on
nodes and buildings, named places, named streets with their lines), CSV with Chinese addresses
and street lines, every bad row named, re-imports that update instead of duplicating."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridcore.cli import app
from gridcore.errors import ImportRejected
from layers.exchange.imports import import_addresses
from layers.exchange.imports.osm_addresses import read_osm_addresses
from tests.support import helsinki_city
from tests.support.data import shared_file
from tests.support.database import row_counts


@pytest.fixture
def city(db: Engine) -> Iterator[Engine]:
    helsinki_city.plant(db)
    yield db


def _count(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_pbf_addresses_places_and_streets(city: Engine) -> None:
    pbf = shared_file(helsinki_city.PBF)
    osm = read_osm_addresses(pbf)
    report = import_addresses(city, pbf)
    assert report.inserted == len(osm.points) and report.updated == 0
    assert report.addresses == _count(city, "SELECT count(*) FROM address WHERE kind = 'address'")
    assert report.addresses > 1400 and report.places > 600  # the extract: 1,441 and 654
    # buildings (ways) and multipolygons with addr:* are addresses too, at a point inside them
    assert _count(city, "SELECT count(*) FROM address WHERE source_id LIKE 'way/%' "
                        "AND kind = 'address'") > 50
    assert _count(city, "SELECT count(*) FROM address WHERE source_id LIKE 'relation/%'") > 0
    with city.connect() as conn:
        row = conn.execute(text(
            "SELECT street, housenumber, name, grid_code, label FROM address "
            "WHERE name = 'Hilton Helsinki Strand'")).mappings().one()
        assert (row["street"], row["housenumber"]) == ("John Stenbergin ranta", "4")
        assert row["grid_code"].startswith(helsinki_city.COMMUNITY)
        assert row["label"] == "Hilton Helsinki Strand, John Stenbergin ranta 4"
        mannerheim = conn.execute(text(
            "SELECT canonical_key, ST_Length(geom::geography) AS metres FROM street "
            "WHERE name = 'Mannerheimintie'")).mappings().one()
        alias = conn.execute(text("SELECT canonical_key FROM street "
                                  "WHERE name = 'Mannerheimvägen'")).scalar_one()
    assert mannerheim["metres"] > 1000 and alias == mannerheim["canonical_key"]
    assert report.street_lines > 80
    # every point of the extract outside the planted grids is counted, none silently dropped
    assert report.outside == _count(city, "SELECT count(*) FROM address WHERE grid_code IS NULL")
    assert "outside every unit grid" in report.summary()
    assert report.skipped  # addr:street without number or name: counted, not imported

    again = import_addresses(city, pbf)
    assert again.inserted == 0 and again.updated == report.inserted
    assert _count(city, "SELECT count(*) FROM address") == report.inserted


def test_csv_with_chinese_addresses_and_street_lines(city: Engine, tmp_path: Path) -> None:
    helsinki_city.import_helsinki_addresses(city, tmp_path)
    with city.connect() as conn:
        row = conn.execute(text("SELECT kind, name, street_key, number_key, cjk, grid_code "
                                "FROM address WHERE source_id = 'zh-1'")).mappings().one()
        lines = conn.execute(text("SELECT count(*) FROM street WHERE geom IS NOT NULL "
                                  "AND name IN ('建国路', '东三环中路')")).scalar_one()
    assert row["kind"] == "address" and row["name"] == "国贸大厦"
    assert (row["street_key"], row["number_key"]) == ("jianguolu", "88")
    assert "建国" in row["cjk"] and row["grid_code"] is not None
    assert lines == 2


def test_bad_rows_are_named_and_nothing_is_written(city: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("street,housenumber,name,lon,lat\n"
                   "Annankatu,5,,24.94,60.17\n"
                   ",7,,24.94,60.17\n"           # a number without a street
                   "Bulevardi,,,24.94,60.17\n"   # a street without a number or name
                   ",,,24.94,60.17\n"            # nothing at all
                   "Annankatu,6,,abc,60.17\n",   # not a number
                   encoding="utf-8")
    before = row_counts(city)
    with pytest.raises(ImportRejected) as err:
        import_addresses(city, bad)
    assert [(p["row"], p["field"]) for p in err.value.problems] == [(5, "lon")]
    bad.write_text("street,housenumber,name,lon,lat\nAnnankatu,5,,24.94,60.17\n"
                   ",7,,24.94,60.17\nBulevardi,,,24.94,60.17\n,,,24.94,60.17\n",
                   encoding="utf-8")
    with pytest.raises(ImportRejected) as err:
        import_addresses(city, bad)
    problems = [(p["row"], p["field"]) for p in err.value.problems]
    assert problems == [(2, "street"), (3, "housenumber"), (4, "name")]
    assert "without a street" in err.value.problems[0]["reason"]
    assert row_counts(city) == before


def test_cli_imports_and_reports(city: Engine, cli_env: dict[str, str], tmp_path: Path) -> None:
    points = tmp_path / "zh.csv"
    points.write_text(helsinki_city.CHINESE_CSV, encoding="utf-8")
    result = CliRunner().invoke(app, ["import", "addresses", str(points), "--source", "zh"],
                                env=cli_env)
    assert result.exit_code == 0, result.output
    assert "5 inserted" in result.output and "4 addresses with a house number" in result.output
    result = CliRunner().invoke(app, ["import", "addresses", str(tmp_path / "none.csv")],
                                env=cli_env)
    assert result.exit_code == 1 and "does not exist" in result.output
