"""Addresses, named places and named streets (地址、地名、道路) for geocoding.

Files: an OSM PBF extract (``layers.exchange.imports.osm_addresses``), or a CSV (``lon``/``lat``
columns, or a ``wkt`` column for lines and areas), GeoPackage, GeoJSON or Shapefile whose
features are

* points (or areas, placed at a point on their surface) with ``street`` + ``housenumber`` — an
  address — and/or a ``name`` — a named place; ``aliases`` (``;``-separated) are other names;
* lines with a ``name`` (or ``street``) — the centre line of a named street, which
  intersections need.

Every row is checked before anything is written (which row, which field, why); the import is
one transaction. Each point gets the unit grid it lies in (``grids_of``: the resolver's
exact rule, no snapping) or none — it is still found by the geocoder, and the summary counts
it. A re-import updates its rows: by ``source`` + the row's ``source_id`` (OSM: ``node/<id>``),
or, in a file without ids, by a digest of the row's street, number, name and position.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import Connection, Engine, text

from gridcore.geocoding.query import number_key
from gridcore.geocoding.text import cjk_grams, search_key
from layers.exchange.imports.locate import grids_of
from layers.exchange.imports.osm_addresses import read_osm_addresses
from layers.exchange.imports.reading import read_file as read_vector
from layers.exchange.imports.reading import to_storage_crs
from layers.exchange.imports.report import ImportReport, Problems, refuse_database_errors

MAX_TEXT = 300
CHUNK = 5000
COLUMNS = {"street": ("street", "addr:street", "addr_street", "road", "街路", "道路"),
           "housenumber": ("housenumber", "house_number", "number", "addr:housenumber",
                           "addr_housenumber", "门牌号", "门牌"),
           "name": ("name", "名称", "地名"),
           "aliases": ("aliases", "alt_name", "别名"),
           "postcode": ("postcode", "addr:postcode", "zip"),
           "city": ("city", "addr:city"),
           "source_id": ("source_id", "id", "osm_id")}


@dataclass
class AddressReport(ImportReport):
    """What an address import did: the rows by kind, the streets, and what lies outside."""

    addresses: int = 0
    places: int = 0
    streets: int = 0
    street_lines: int = 0
    outside: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        line = (f"addresses: {self.inserted} inserted, {self.updated} updated "
                f"({self.addresses} addresses with a house number, {self.places} named places); "
                f"{self.streets} street names ({self.street_lines} with centre lines); "
                f"{self.outside} outside every unit grid (found by the geocoder, filed without "
                "a grid)")
        return "\n".join([line, *(f"  skipped: {n} {why}" for why, n in self.skipped.items())])

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "addresses": self.addresses, "places": self.places,
                "streets": self.streets, "street_lines": self.street_lines,
                "outside": self.outside, "skipped": self.skipped}


def _column(frame: pd.DataFrame, kind: str, given: str | None) -> pd.Series:
    names = (given,) if given else COLUMNS[kind]
    for name in names:
        if name in frame.columns:
            return frame[name].astype(object).where(frame[name].notna(), "").map(
                lambda v: v if isinstance(v, list) else str(v).strip())
    return pd.Series([""] * len(frame), index=frame.index, dtype=object)


def read_addresses(path: str | Path, crs: str | None = None, *, override_crs: bool = False,
                   layer: str | None = None,
                   lon_field: str | None = None, lat_field: str | None = None,
                   encoding: str | None = None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame,
                                                         dict[str, int]]:
    """(points, street lines, what was skipped) of a file, in EPSG:4326."""
    path = Path(path)
    if path.suffix.lower() == ".pbf":
        osm = read_osm_addresses(path)
        points = osm.points.assign(source="osm")
        return points, osm.streets, osm.skipped
    frame = read_vector(path, "addresses", crs, override_crs=override_crs, layer=layer,
                        lon_field=lon_field,
                        lat_field=lat_field, encoding=encoding)
    kinds = frame.geometry.geom_type.fillna("")
    is_line = kinds.isin(["LineString", "MultiLineString"]).to_numpy()
    return frame[~is_line].reset_index(drop=True), frame[is_line].reset_index(drop=True), {}


def _digest(*parts: object) -> str:
    return "h:" + hashlib.sha1(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:20]


def _label(street: str, number: str, name: str) -> str:
    address = f"{street} {number}".strip() if street else ""
    if name and address:
        return f"{name}, {address}"
    return name or address


def _point_rows(points: gpd.GeoDataFrame, source: str, fields: dict[str, str | None],
                problems: Problems) -> list[dict[str, Any]]:
    cols = {k: _column(points, k, fields.get(k)).tolist() for k in COLUMNS}
    geoms = points.geometry.to_numpy()
    tags = points["attributes"].tolist() if "attributes" in points.columns else None
    rows = []
    for i in range(len(points)):
        row = i + 1
        geom = geoms[i]
        if geom is None or shapely.is_empty(geom):
            problems.add(row, "geometry", "empty or missing geometry")
            continue
        if shapely.get_type_id(geom) != 0:
            geom = shapely.point_on_surface(geom)
        x, y = shapely.get_x(geom), shapely.get_y(geom)
        if not (np.isfinite(x) and np.isfinite(y)):
            problems.add(row, "geometry", "point without finite coordinates")
            continue
        street, number, name = (str(cols[k][i]) for k in ("street", "housenumber", "name"))
        for k, v in (("street", street), ("housenumber", number), ("name", name)):
            if len(v) > MAX_TEXT:
                problems.add(row, fields.get(k) or k, f"longer than {MAX_TEXT} characters")
        if number and not street:
            problems.add(row, fields.get("street") or "street",
                         f"house number {number!r} without a street")
            continue
        if street and not number and not name:
            problems.add(row, fields.get("housenumber") or "housenumber",
                         f"street {street!r} has no house number (and no name to file it as a "
                         "named place)")
            continue
        if not street and not name:
            problems.add(row, fields.get("name") or "name",
                         "neither a street with a house number nor a name")
            continue
        raw_aliases = cols["aliases"][i]
        alias_list = (raw_aliases if isinstance(raw_aliases, list)
                      else [a.strip() for a in str(raw_aliases).split(";") if a.strip()])
        names = " ".join([name, *alias_list])  # the characters of every name
        attributes = tags[i] if tags is not None else {}
        sid = str(cols["source_id"][i]) or _digest(street, number, name, round(x, 6),
                                                        round(y, 6))
        rows.append({
            "kind": "address" if street else "place", "street": street, "housenumber": number,
            "name": name, "postcode": str(cols["postcode"][i]),
            "city": str(cols["city"][i]), "label": _label(street, number, name),
            "street_key": search_key(street), "number_key": number_key(number),
            "name_key": search_key(name),
            "alias_key": search_key(" ".join(alias_list)),
            "alias_keys": [search_key(a) for a in alias_list],
            "cjk": cjk_grams(f"{names} {street}"),
            "source": source, "source_id": sid, "lon": x, "lat": y,
            "attributes": attributes if isinstance(attributes, dict) else {},
            "aliases": alias_list})
    return rows


def _street_rows(lines: gpd.GeoDataFrame, address_rows: list[dict[str, Any]], source: str,
                 fields: dict[str, str | None], problems: Problems,
                 first_row: int) -> list[dict[str, Any]]:
    """One row per street name (its aliases point at it), lines merged by name."""
    merged: dict[str, dict[str, Any]] = {}
    names = _column(lines, "name", fields.get("name"))
    streets = _column(lines, "street", fields.get("street"))
    alias_col = _column(lines, "aliases", fields.get("aliases"))
    for i, geom in enumerate(lines.geometry.to_numpy()):
        name = str(names.iat[i] or streets.iat[i])
        if not name:
            problems.add(first_row + i, fields.get("name") or "name", "a line without a name "
                         "(street lines need one)")
            continue
        key = search_key(name)
        entry = merged.setdefault(key, {"name": name, "parts": [], "aliases": []})
        entry["parts"].extend(shapely.get_parts(geom))
        raw = alias_col.iat[i]
        entry["aliases"].extend(raw if isinstance(raw, list)
                                else [a.strip() for a in str(raw).split(";") if a.strip()])
    out: dict[str, dict[str, Any]] = {}
    for key, entry in merged.items():
        geom = shapely.multilinestrings(entry["parts"])
        out[key] = {"name": entry["name"], "street_key": key, "canonical_key": key,
                    "cjk": cjk_grams(entry["name"]), "wkb": shapely.to_wkb(geom, hex=True),
                    "source": source}
        for alias in entry["aliases"]:
            alias_key = search_key(alias)
            if alias_key and alias_key not in merged:
                out.setdefault(alias_key, {**out[key], "name": alias, "street_key": alias_key,
                                           "cjk": cjk_grams(alias)})
    for r in address_rows:
        key = r["street_key"]
        if key and key not in out:
            out[key] = {"name": r["street"], "street_key": key, "canonical_key": key,
                        "cjk": cjk_grams(r["street"]), "wkb": None, "source": source}
    return list(out.values())


_UPSERT_ADDRESSES = text("""
INSERT INTO address AS a (kind, street, housenumber, name, aliases, postcode, city, label,
    street_key, number_key, name_key, alias_key, alias_keys, cjk, grid_id, grid_code, source,
    source_id, attributes, geom)
SELECT r.kind, r.street, r.housenumber, r.name, r.aliases, r.postcode, r.city, r.label,
       r.street_key, r.number_key, r.name_key, r.alias_key, r.alias_keys, r.cjk, g.id,
       r.grid_code, r.source, r.source_id, r.attributes,
       ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r (kind text, street text, housenumber text,
    name text, aliases text[], postcode text, city text, label text, street_key text,
    number_key text, name_key text, alias_key text, alias_keys text[], cjk text[],
    grid_code text, source text, source_id text, attributes jsonb, lon float8, lat float8)
LEFT JOIN unit_grid g ON g.code = r.grid_code AND g.gen_to IS NULL
ON CONFLICT (source, source_id) WHERE source_id IS NOT NULL DO UPDATE SET
    kind = excluded.kind, street = excluded.street, housenumber = excluded.housenumber,
    name = excluded.name, aliases = excluded.aliases, postcode = excluded.postcode,
    city = excluded.city, label = excluded.label, street_key = excluded.street_key,
    number_key = excluded.number_key, name_key = excluded.name_key,
    alias_key = excluded.alias_key, alias_keys = excluded.alias_keys, cjk = excluded.cjk,
    grid_id = excluded.grid_id, grid_code = excluded.grid_code,
    attributes = excluded.attributes, geom = excluded.geom, updated_at = now()
RETURNING (xmax = 0) AS inserted
""")
_UPSERT_STREETS = text("""
INSERT INTO street AS s (name, street_key, canonical_key, cjk, geom, source)
SELECT r.name, r.street_key, r.canonical_key, r.cjk,
       ST_Multi(ST_SetSRID(CAST(r.wkb AS geometry), 4326)), r.source
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r (name text, street_key text,
    canonical_key text, cjk text[], wkb text, source text)
ON CONFLICT (street_key) DO UPDATE SET
    name = excluded.name, cjk = excluded.cjk,
    -- a street's line from another file joins the one stored; a file without lines keeps it
    geom = CASE WHEN excluded.geom IS NULL THEN s.geom WHEN s.geom IS NULL THEN excluded.geom
                ELSE ST_Multi(ST_CollectionExtract(ST_Union(s.geom, excluded.geom), 2)) END,
    updated_at = now()
""")


def _store(conn: Connection, rows: list[dict[str, Any]], streets: list[dict[str, Any]],
           report: AddressReport) -> None:
    for start in range(0, len(rows), CHUNK):
        chunk = json.dumps(rows[start:start + CHUNK], ensure_ascii=False, default=str)
        done = conn.execute(_UPSERT_ADDRESSES, {"rows": chunk}).all()
        report.inserted += sum(1 for d in done if d.inserted)
        report.updated += sum(1 for d in done if not d.inserted)
    for start in range(0, len(streets), CHUNK):
        conn.execute(_UPSERT_STREETS, {"rows": json.dumps(streets[start:start + CHUNK],
                                                          ensure_ascii=False)})


@refuse_database_errors("addresses")
def load_addresses(engine: Engine, points: gpd.GeoDataFrame,
                   lines: gpd.GeoDataFrame | None = None, *, source: str = "",
                   street_field: str | None = None, number_field: str | None = None,
                   name_field: str | None = None, id_field: str | None = None,
                   skipped: dict[str, int] | None = None) -> AddressReport:
    """Store address points and street lines (see the module); all or nothing."""
    what = "addresses"
    points = to_storage_crs(points, what)
    lines = to_storage_crs(lines, what) if lines is not None and len(lines) else None
    fields = {"street": street_field, "housenumber": number_field, "name": name_field,
              "source_id": id_field}
    problems = Problems(what)
    if source == "" and "source" in points.columns and len(points):
        source = str(points["source"].iat[0])
    rows = _point_rows(points, source, fields, problems)
    streets = _street_rows(lines if lines is not None else gpd.GeoDataFrame(geometry=[]),
                           rows, source, fields, problems, first_row=len(points) + 1)
    seen: dict[str, int] = {}
    for i, r in enumerate(rows):
        if r["source_id"] in seen:
            problems.add(i + 1, id_field or "source_id",
                         f"source id {r['source_id']!r} repeats row {seen[r['source_id']]}")
        seen.setdefault(r["source_id"], i + 1)
    problems.raise_if_any()
    report = AddressReport("addresses", skipped=dict(skipped or {}))
    with engine.begin() as conn:
        codes = grids_of(conn, shapely.points([[r["lon"], r["lat"]] for r in rows]),
                         snap_m=0).grid_codes() if rows else np.array([])
        for r, code in zip(rows, codes, strict=True):
            r["grid_code"] = code
        _store(conn, rows, streets, report)
    report.addresses = sum(1 for r in rows if r["kind"] == "address")
    report.places = len(rows) - report.addresses
    report.streets = len(streets)
    report.street_lines = sum(1 for s in streets if s["wkb"] is not None)
    report.outside = sum(1 for r in rows if r["grid_code"] is None)
    return report


def import_addresses(engine: Engine, path: str | Path, source: str | None = None,
                     **options: Any) -> AddressReport:
    """Read ``path`` (PBF, CSV, GeoPackage, GeoJSON, Shapefile) and load it."""
    read_opts = {k: options.pop(k) for k in ("crs", "override_crs", "layer", "lon_field",
                                             "lat_field", "encoding") if k in options}
    read_opts = {k: v for k, v in read_opts.items() if v is not None}
    points, lines, skipped = read_addresses(path, **read_opts)
    name = source or ("osm" if Path(path).suffix.lower() == ".pbf" else Path(path).stem)
    return load_addresses(engine, points, lines, source=name, skipped=skipped,
                          **{k: v for k, v in options.items() if v is not None})
