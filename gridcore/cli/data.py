"""``gridcore import KIND FILE`` and ``gridcore export LAYER`` (导入, 导出): every layer in and
out of files; an import is one transaction, all or nothing, and is audited."""

from __future__ import annotations

from typing import Annotated

import typer

from gridcore.cli.common import audit_cli, engine, fail, settings

import_app = typer.Typer(help="Import a layer from GeoPackage, GeoJSON, Shapefile, CSV (lon/lat) "
                              "or OSM PBF (city parts, addresses). One transaction: all or "
                              "nothing.",
                         no_args_is_help=True)
CrsOpt = Annotated[str | None, typer.Option(
    help="CRS of a file that declares none: EPSG:n, CGCS2000, GCJ-02, BD-09 (a CSV: default "
         "EPSG:4326); on a file that declares another CRS only with --override-crs")]
OverrideOpt = Annotated[bool, typer.Option(
    "--override-crs", help="the file's declared CRS is wrong: read it in --crs instead (GCJ-02 "
                           "data is often labelled WGS 84)")]
LayerOpt = Annotated[str | None, typer.Option(help="layer of a GeoPackage")]
LonOpt = Annotated[str | None, typer.Option(help="CSV longitude column")]
LatOpt = Annotated[str | None, typer.Option(help="CSV latitude column")]
InvalidOpt = Annotated[str, typer.Option(help="invalid polygons: repair (make_valid) | reject")]


def _import(ctx: typer.Context, kind: str, path: str, **options: object) -> None:
    from gridcore.errors import ImportRejected
    from layers.exchange.imports import import_file
    from layers.exchange.imports.report import format_problems

    made = engine(ctx)
    tree = settings(ctx)
    if kind in ("parts", "cases"):  # the one H3 resolution of parts and cases
        options["h3_resolution"] = tree.h3_resolution
    if kind in ("parts", "entities"):  # resolve's snap rule
        options["snap_m"] = tree.resolve.snap_m
    try:
        report = import_file(made, kind, path, **options)
    except ImportRejected as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        typer.echo(format_problems(exc.problems), err=True)
        count = exc.details.get("problem_count", len(exc.problems))
        if count > len(exc.problems):
            typer.echo(f"  … {count - len(exc.problems)} more problems not listed", err=True)
        raise typer.Exit(1) from None
    audit_cli(made, f"import.{kind}", str(path), {"summary": report.summary()})
    typer.echo(report.summary())
    if report.phases:
        typer.echo(f"  {report.phase_line()}")


@import_app.command("areas")
def import_areas(ctx: typer.Context, path: str, level: Annotated[str | None, typer.Option(
                     help="district | street | community (default: from code length)")] = None,
                 code_field: str = "code", name_field: str = "name",
                 parent_field: str = "parent_code",
                 parent: Annotated[str | None, typer.Option(
                     help="the area every row lies under: a street (communities), a district "
                          "(streets) or a 4-digit prefecture prefix (districts)")] = None,
                 generate_codes: Annotated[bool, typer.Option(
                     "--generate-codes", help="rows without a code get one under --parent, "
                                              "in map reading order")] = False,
                 on_invalid: InvalidOpt = "repair", crs: CrsOpt = None,
                 override_crs: OverrideOpt = False, layer: LayerOpt = None,
                 lon_field: LonOpt = None, lat_field: LatOpt = None) -> None:
    """Administrative areas: districts (6 digits), streets (9), communities (12)."""
    _import(ctx, "areas", path, level=level, code_field=code_field, name_field=name_field,
            parent_field=parent_field, parent=parent, generate_codes=generate_codes,
            on_invalid=on_invalid, crs=crs, override_crs=override_crs, layer=layer,
            lon_field=lon_field, lat_field=lat_field)


@import_app.command("grids")
def import_grids(ctx: typer.Context, path: str, code_field: Annotated[str | None, typer.Option(
                     help="15-digit code column (default: generate codes)")] = None,
                 name_field: str = "name", community_field: str = "community_code",
                 on_invalid: InvalidOpt = "repair", note: str = "", crs: CrsOpt = None,
                 override_crs: OverrideOpt = False, layer: LayerOpt = None) -> None:
    """Unit grids, as a new grid generation (none when nothing changes)."""
    _import(ctx, "grids", path, code_field=code_field, name_field=name_field,
            community_field=community_field, on_invalid=on_invalid, note=note, crs=crs,
            override_crs=override_crs, layer=layer)


@import_app.command("parts")
def import_parts(ctx: typer.Context, path: str, code_field: str = "code",
                 class_field: str = "class_code",
                 name_field: str = "name", state_field: str = "state",
                 district: Annotated[str | None, typer.Option(
                     help="6-digit district of generated codes for parts in no grid (a "
                          "part in a grid, or snapped to one, takes that grid's district)")
                 ] = None, source: str | None = None, source_id_field: str = "source_id",
                 crs: CrsOpt = None, override_crs: OverrideOpt = False,
                 layer: LayerOpt = None, lon_field: LonOpt = None,
                 lat_field: LatOpt = None,
                 bulk: Annotated[bool | None, typer.Option(
                     "--bulk/--no-bulk", help="rebuild indexes and keys once after the load "
                     "(readers, and writers of departments, wait for the commit); default: "
                     "when ≥ 100,000 new rows and ≥ the table")
                 ] = None) -> None:
    """City parts (部件), from a point file or an OSM PBF extract."""
    _import(ctx, "parts", path, code_field=code_field, class_field=class_field,
            name_field=name_field, state_field=state_field, district=district, source=source,
            source_id_field=source_id_field, crs=crs, override_crs=override_crs, layer=layer,
            lon_field=lon_field, lat_field=lat_field, bulk=bulk)


@import_app.command("entities")
def import_entities(ctx: typer.Context, path: str, code_field: str = "code",
                    area_field: str = "area",
                    type_field: str = "type", name_field: str = "name",
                    sensitivity_field: str = "sensitivity",
                    restricted_fields: Annotated[str, typer.Option(
                        help="comma-separated columns stored as restricted attributes")] = "",
                    source: str = "", on_invalid: InvalidOpt = "repair", crs: CrsOpt = None,
                    override_crs: OverrideOpt = False, layer: LayerOpt = None,
                    lon_field: LonOpt = None,
                    lat_field: LatOpt = None) -> None:
    """9+X governance entities (综治)."""
    _import(ctx, "entities", path, code_field=code_field, area_field=area_field,
            type_field=type_field, name_field=name_field, sensitivity_field=sensitivity_field,
            restricted_fields=[f.strip() for f in restricted_fields.split(",") if f.strip()],
            source=source, on_invalid=on_invalid, crs=crs, override_crs=override_crs,
            layer=layer, lon_field=lon_field, lat_field=lat_field)


@import_app.command("addresses")
def import_addresses(ctx: typer.Context, path: str,
                     source: Annotated[str | None, typer.Option(
                         help="the source's name (default: osm for a PBF, else the file's "
                              "name); a re-import of the same source updates its rows")] = None,
                     street_field: Annotated[str | None, typer.Option(
                         help="street column (default: street, addr:street)")] = None,
                     number_field: Annotated[str | None, typer.Option(
                         help="house number column (default: housenumber, number)")] = None,
                     name_field: Annotated[str | None, typer.Option(
                         help="name column (default: name)")] = None,
                     id_field: Annotated[str | None, typer.Option(
                         help="stable id column (default: source_id, id)")] = None,
                     crs: CrsOpt = None, layer: LayerOpt = None, lon_field: LonOpt = None,
                     lat_field: LatOpt = None) -> None:
    """Addresses (street + house number), named places and named streets for geocoding
    (地址): OSM PBF (addr:* on nodes and buildings, named POIs, named ways), CSV, GeoPackage,
    GeoJSON."""
    _import(ctx, "addresses", path, source=source, street_field=street_field,
            number_field=number_field, name_field=name_field, id_field=id_field, crs=crs,
            layer=layer, lon_field=lon_field, lat_field=lat_field)


def _columns(value: str | None) -> tuple[str, ...]:
    return tuple(c.strip() for c in (value or "").split(",") if c.strip())


@import_app.command("cases")
def import_cases(
        ctx: typer.Context, path: str,
        system: Annotated[str, typer.Option(help="name of the legacy system (e.g. sf311): "
                                                 "with the id it identifies each case; a "
                                                 "re-import updates instead of duplicating")],
        id_field: Annotated[str, typer.Option(help="column of the original case id")],
        opened_field: Annotated[str, typer.Option(help="column of the time it was opened")],
        closed_field: Annotated[str | None, typer.Option(help="column of the closing time")
                                ] = None,
        text_field: Annotated[list[str] | None, typer.Option(
            help="column(s) of the text, joined by line breaks in this order (repeatable)")
                              ] = None,
        text_fields: Annotated[str | None, typer.Option(
            help="the same, comma-separated (title,detail)")] = None,
        category_field: Annotated[str | None, typer.Option(help="column of the category")
                                  ] = None,
        department_field: Annotated[str | None, typer.Option(
            help="column of the department that handled it")] = None,
        state_field: Annotated[str | None, typer.Option(
            help="column of the final status (default: closed when a closing time is given)")
                               ] = None,
        source_field: Annotated[str | None, typer.Option(help="column of the channel")] = None,
        address_field: Annotated[str | None, typer.Option(help="column of the address")
                                 ] = None,
        notes_field: Annotated[str | None, typer.Option(
            help="column of the handling notes or the reply given")] = None,
        mapping: Annotated[str | None, typer.Option(
            help="CSV kind,value,code: the file's categories, departments, states and "
                 "channels → gridcore's codes")] = None,
        unmapped: Annotated[str, typer.Option(
            help="refuse (list the unmapped values) | other (category E9999, no department, "
                 "still open; the original words kept)")] = "refuse",
        timezone: Annotated[str | None, typer.Option(
            help="time zone of times without an offset (default GRIDCORE_CITY_TIMEZONE)")
                            ] = None,
        time_format: Annotated[str | None, typer.Option(
            help="strftime format of the times (default: ISO 8601 or inferred)")] = None,
        crs: CrsOpt = None, layer: LayerOpt = None, lon_field: LonOpt = None,
        lat_field: LatOpt = None,
        encoding: Annotated[str | None, typer.Option(help="text encoding (utf-8)")] = None
) -> None:
    """Cases of a legacy system (历史案卷): CSV, GeoJSON or GeoPackage, each kept as it
    ended (its times, final state, department), one history row "imported"."""
    import getpass

    from layers.exchange.imports import CaseFields

    tree = settings(ctx)
    fields = CaseFields(id_field=id_field, opened_field=opened_field,
                        closed_field=closed_field,
                        text_fields=tuple(text_field or ()) + _columns(text_fields),
                        category_field=category_field, department_field=department_field,
                        address_field=address_field, state_field=state_field,
                        source_field=source_field, notes_field=notes_field)
    _import(ctx, "cases", path, system=system, fields=fields, mapping=mapping,
            unmapped=unmapped, timezone=timezone or tree.cases.city_timezone,
            time_format=time_format, snap_m=tree.resolve.snap_m,
            actor=f"cli:{getpass.getuser()}", crs=crs, layer=layer, lon_field=lon_field,
            lat_field=lat_field, encoding=encoding)
    _settle_health(ctx)


def _settle_health(ctx: typer.Context) -> None:
    """The imported cases marked their grids' days dirty for city health: recount them here,
    so the next health page does not (a year of history marks every grid it touches)."""
    import time

    from gridcore.health import HealthModel
    from layers.health import days

    tree = settings(ctx)
    started = time.perf_counter()
    settled = days.settle(engine(ctx), tree.cases.working_calendar,
                          HealthModel.default().repeat_days)
    if settled:
        typer.echo(f"  city health: {settled:,} dirty grid-day marks recounted in "
                   f"{time.perf_counter() - started:.1f} s")


@import_app.command("departments")
def import_departments(ctx: typer.Context, path: str) -> None:
    """Departments: CSV with code, name, parent_code, contact; optional level (district /
    street / community), area_code (the area it serves), level_team (true: the area's own team,
    which takes the cases escalated to that level)."""
    _import(ctx, "departments", path)


@import_app.command("workers")
def import_workers(ctx: typer.Context, path: str) -> None:
    """Grid workers (网格员): CSV with code, name, phone, active, grids (codes, ';'-separated)."""
    _import(ctx, "workers", path)


def export(ctx: typer.Context,
           layer: Annotated[str, typer.Argument(help="areas | grids | parts | entities; "
                                                     "cases (geoparquet only)")],
           output: Annotated[str, typer.Option("-o", "--output",
                                               help="file to write (a directory for "
                                                    "geoparquet)")],
           fmt: Annotated[str | None, typer.Option("--format", help="gpkg | geojson | csv | "
                                                   "geoparquet (default: from the file name)")
                          ] = None,
           bbox: Annotated[str | None, typer.Option(help="minx,miny,maxx,maxy (lon/lat)")
                           ] = None,
           replace: Annotated[bool, typer.Option(help="geoparquet: replace a non-empty "
                                                      "directory")] = False) -> None:
    """Export a layer (entities never include restricted attributes). GeoParquet writes a
    directory of partitions: cases by month of report, parts by district (dask-geopandas,
    pyarrow, DuckDB read it as one dataset)."""
    from layers.exchange.export import export_layer, parse_bbox

    if (fmt or "").lower() == "geoparquet":
        from layers.exchange.geoparquet import export_geoparquet

        if bbox:
            fail("--bbox is not supported with geoparquet (the export is partitioned whole)")
        from gridcore.errors import ValidationError

        made = engine(ctx)
        try:
            summary = export_geoparquet(made, layer, output, settings(ctx).cases.city_timezone,
                                        replace=replace)
        except ValidationError as exc:
            fail(str(exc))
        typer.echo(f"{summary.rows} {layer} written to {output} in {len(summary.partitions)} "
                   f"partitions ({'month' if layer == 'cases' else 'district'}=…)")
        return

    box = parse_bbox(bbox) if bbox else None
    n = export_layer(engine(ctx), layer, output, fmt, box)
    typer.echo(f"{n} {layer} written to {output}")
