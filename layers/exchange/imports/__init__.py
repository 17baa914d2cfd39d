"""File import (导入) of the spatial layers: read → validate everything → one transaction → COPY.

Public entry points (kept stable for other modules, the CLI and the demo):

- ``read_file(path, layer_kind, crs=None, override_crs=False, ...)`` → GeoDataFrame in
  EPSG:4326 (the CRS rule: ``spatial.crs_choice``);
- ``load_areas / load_grids / load_parts / load_entities(engine, gdf, ...)`` → ImportReport;
- ``load_addresses(engine, points, lines)`` / ``import_addresses(engine, path)`` (addresses,
  named places and streets for geocoding; OSM PBF too);
- ``load_departments(engine, df)`` / ``import_departments(engine, path)``, the same for
  grid workers (``load_workers`` / ``import_workers``);
- ``import_cases(engine, path, system=…, fields=CaseFields(…), mapping=…)`` — the history of
  a legacy system (``layers.exchange.imports.cases``; ``load_cases`` takes a read file);
- ``import_file(engine, kind, path, **options)`` = read_file + the loader of ``kind``.

A refused import raises ``gridcore.errors.ImportRejected`` whose ``problems`` list every bad
row as ``{row, field, reason}``; nothing is written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from layers.exchange.imports.addresses import import_addresses, load_addresses
from layers.exchange.imports.areas import load_areas
from layers.exchange.imports.case_reading import read_case_file
from layers.exchange.imports.cases import CaseFields, import_cases, load_cases
from layers.exchange.imports.departments import import_departments, load_departments
from layers.exchange.imports.entities import load_entities
from layers.exchange.imports.grids import load_grids
from layers.exchange.imports.parts import load_parts
from layers.exchange.imports.reading import read_file
from layers.exchange.imports.report import ImportReport
from layers.exchange.imports.workers import import_workers, load_workers

LOADERS: dict[str, Any] = {"areas": load_areas, "grids": load_grids, "parts": load_parts,
                           "entities": load_entities, "cases": load_cases}
READ_OPTIONS = ("crs", "override_crs", "layer", "lon_field", "lat_field", "encoding")

__all__ = ["CaseFields", "ImportReport", "import_addresses", "import_cases", "import_departments",
           "import_file", "import_workers", "load_addresses", "load_areas", "load_cases",
           "load_departments", "load_entities",
           "load_grids", "load_parts", "load_workers", "read_file"]


def import_file(engine: Engine, kind: str, path: str | Path, **options: Any) -> ImportReport:
    """Read ``path`` and load it as ``kind`` (areas, grids, parts, entities, addresses, cases,
    departments, workers)."""
    if kind == "departments":
        return import_departments(engine, path)
    if kind == "addresses":
        return import_addresses(engine, path, **options)
    if kind == "workers":
        return import_workers(engine, path)
    if kind not in LOADERS:
        raise ValueError(f"unknown layer {kind!r}: one of {', '.join(LOADERS)}")
    read_opts = {k: options.pop(k) for k in READ_OPTIONS if k in options}
    if kind == "cases":  # a case file may have no geometry at all (a hotline's messages)
        return load_cases(engine, read_case_file(path, **read_opts), **options)
    started = time.perf_counter()
    gdf = read_file(path, kind, **read_opts)
    read_s = time.perf_counter() - started
    options = {k: v for k, v in options.items() if v is not None}
    report: ImportReport = LOADERS[kind](engine, gdf, **options)
    if report.phases:  # a loader that times its phases (parts) gets the reading in front
        report.phases.insert(0, ("read", read_s))
    return report
