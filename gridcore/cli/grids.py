"""``gridcore grids draw``, ``gridcore check`` and ``gridcore resolve FILE``: unit grids (单元网格)
drawn from a line network, their topology, and points located in them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gridcore.cli.common import engine, settings

app = typer.Typer(help="Unit grids (单元网格): draw them from a line network.",
                  no_args_is_help=True)


@app.command("draw")
def draw(
    ctx: typer.Context,
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

    made = engine(ctx)
    rules = DrawingRules(target_area, min_area, max_area)
    areas = (file_communities(communities, code_field, crs) if communities
             else stored_communities(made, community_prefix))
    lines = read_network(network, crs)
    grids, report = draw_and_store(made, areas, lines, rules,
                                   note=f"drawn from {network} (target {target_area:g} m²)")
    typer.echo(f"{len(grids)} unit grids in {grids.community_code.nunique()} communities, "
               f"area {grids.area_m2.min():,.0f}–{grids.area_m2.max():,.0f} m² "
               f"(median {grids.area_m2.median():,.0f})")
    typer.echo(report.summary())


def check(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False,
          min_area: Annotated[float, typer.Option(
              help="ignore overlaps/gaps smaller than this, m² (float noise)")] = 0.01,
          aggregates: Annotated[bool, typer.Option(
              "--aggregates", help="check city health's day aggregates and the case and part "
                                   "tiles' cell counts against a recount instead")] = False,
          evaluation: Annotated[bool, typer.Option(
              "--evaluation", help="check the per-case evaluation facts against a recount "
                                   "from the cases' history")] = False,
          repair: Annotated[bool, typer.Option(
              "--repair", help="with --aggregates or --evaluation: count them all again "
                               "first")] = False) -> None:
    """Topology of the current unit grids: overlaps, gaps, grids outside their community,
    invalid geometries, code prefixes; or (--aggregates) city health's day aggregates against a
    recount from the cases; or (--evaluation) the per-case evaluation facts against a recount
    from the history. Exits 1 when a problem is found."""
    if evaluation:
        _check_evaluation(ctx, as_json, repair)
        return
    if aggregates:
        _check_aggregates(ctx, as_json, repair)
        return
    from layers.grids.topology import check_stored_topology

    report = check_stored_topology(engine(ctx), min_area)
    typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2) if as_json
               else report.to_text())
    if not report.ok:
        raise typer.Exit(1)


def _check_aggregates(ctx: typer.Context, as_json: bool, repair: bool) -> None:
    from gridcore.health import HealthModel
    from layers.health import days

    cal, reach = settings(ctx).cases.working_calendar, HealthModel.default().repeat_days
    eng = engine(ctx)
    if repair:
        rows = days.rebuild(eng, cal, reach)
        typer.echo(f"day aggregates counted again from the cases: {rows:,} grid × class × day "
                   "rows, and their running totals")
    result = days.check(eng, cal, reach)
    cells = _case_cells(eng, repair, as_json)
    parts = _part_cells(eng, repair, as_json)
    if as_json:
        typer.echo(json.dumps({**result.as_dict(), "case_cells": cells.as_dict(),
                               "part_cells": parts.as_dict()},
                              ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(f"day aggregates: {result.rows:,} rows, {result.dirty:,} dirty marks "
                   "(counted live)")
        for name, rows_ in (("in the recount, not stored as such", result.missing),
                            ("stored, not in the recount", result.extra)):
            for row in rows_:
                typer.echo(f"  {name}: " + json.dumps(row, ensure_ascii=False, default=str))
        typer.echo(f"open cases' facts: {result.open_rows:,} rows")
        for name, rows_ in (("in the recount, not stored as such", result.open_missing),
                            ("stored, not in the recount", result.open_extra)):
            for row in rows_:
                typer.echo(f"  {name}: " + json.dumps(row, ensure_ascii=False, default=str))
        runs = result.run_check
        if runs is not None:
            typer.echo(f"running totals (grid × month): {runs.rows:,} rows")
            for row in runs.differ:
                typer.echo("  differs from the day rows: " + json.dumps(row, default=str))
            typer.echo("ok: the running totals equal a recount from the day rows"
                       if runs.ok else "MISMATCH in the running totals")
        typer.echo("ok: the day aggregates equal a recount from the cases" if result.ok else
                   "MISMATCH: run gridcore check --aggregates --repair")
        typer.echo(f"case cells: {cells.rows:,} rows")
        for row in cells.differ:
            typer.echo("  differs from the recount: " + json.dumps(row))
        typer.echo("ok: the case cells equal a recount from the cases" if cells.ok else
                   "MISMATCH: run gridcore check --aggregates --repair")
        typer.echo(f"part cells: {parts.rows:,} rows")
        for row in parts.differ:
            typer.echo("  differs from the recount: " + json.dumps(row))
        typer.echo("ok: the part cells equal a recount from the city parts" if parts.ok else
                   "MISMATCH: run gridcore check --aggregates --repair")
    if not result.ok or not cells.ok or not parts.ok:
        raise typer.Exit(1)


def _check_evaluation(ctx: typer.Context, as_json: bool, repair: bool) -> None:
    from gridcore.evaluation import EvaluationModel
    from layers.evaluation import store

    config = settings(ctx)
    path = config.evaluation.evaluation_indicators
    model = (EvaluationModel.from_dict(json.loads(Path(path).read_text("utf-8"))) if path
             else EvaluationModel.default())
    cal, eng = config.cases.working_calendar, engine(ctx)
    if repair:
        rows = store.rebuild(eng, cal, model)
        typer.echo(f"evaluation facts counted again from the history: {rows:,} cases")
    result = store.check(eng, cal, model)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(f"evaluation facts: {result.rows:,} cases, {result.dirty:,} waiting for "
                   "their recount" + ("" if result.basis_ok else
                                      "; built on another calendar or other time limits"))
        for name, ids in (("recounted differently or not stored", result.missing),
                          ("stored differently or not recounted", result.extra)):
            if ids:
                typer.echo(f"  {name}: cases {', '.join(map(str, ids[:20]))}"
                           + (" …" if len(ids) > 20 else ""))
        typer.echo("ok: the evaluation facts equal a recount from the history" if result.ok
                   else "MISMATCH: run gridcore check --evaluation --repair")
    if not result.ok:
        raise typer.Exit(1)


def _case_cells(eng: Any, repair: bool, quiet: bool) -> Any:
    """The case tiles' settled counts per H3 cell against a recount from the cases."""
    from layers.ogc import case_cells

    if repair:
        rows = case_cells.rebuild(eng)
        if not quiet:
            typer.echo(f"case cells counted again from the cases: {rows:,} rows")
    return case_cells.check(eng)


def _part_cells(eng: Any, repair: bool, quiet: bool) -> Any:
    """The part tiles' counts per H3 cell, class and state against a recount from the
    parts."""
    from layers.ogc import part_cells

    if repair:
        rows = part_cells.rebuild(eng)
        if not quiet:
            typer.echo(f"part cells counted again from the city parts: {rows:,} rows")
    return part_cells.check(eng)


def resolve_file(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="points: GeoPackage, GeoJSON, Shapefile, CSV "
                                              "(lon/lat columns)…")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write (.gpkg, "
                                                                 ".geojson, .csv…)")],
    crs: Annotated[str | None, typer.Option(help="CRS of a file that declares none: EPSG:n, "
                                                 "CGCS2000, GCJ-02, BD-09 (a CSV: default "
                                                 "EPSG:4326)")] = None,
    override_crs: Annotated[bool, typer.Option(
        "--override-crs", help="the file's declared CRS is wrong: read it in --crs instead "
                               "(GCJ-02 data is often labelled WGS 84)")] = False,
    category: Annotated[str | None, typer.Option(help="column of class keys (P0101…) for the "
                                                      "department")] = None,
    lon_field: Annotated[str | None, typer.Option(help="CSV longitude column")] = None,
    lat_field: Annotated[str | None, typer.Option(help="CSV latitude column")] = None,
) -> None:
    """Add grid, community, street, district, department and H3 columns to every point. The
    file's CRS follows the imports' rule (its declared CRS; --crs when it declares none)."""
    from gridcore.errors import ImportRejected
    from layers.exchange.export import neutralise_frame
    from layers.exchange.imports.reading import CRS_SOURCE, crs_note, read_file
    from layers.exchange.imports.report import format_problems
    from layers.grids.resolver import Resolver
    from spatial.batch import resolve

    tree = settings(ctx)
    try:
        # the coordinates stay as given in the output; resolve converts its own copy
        gdf = read_file(path, "points", crs, override_crs=override_crs, lon_field=lon_field,
                        lat_field=lat_field, what=f"points file {path.name}", convert=False)
    except ImportRejected as exc:  # the reader's refusal, without the import's words
        first = exc.problems[0] if exc.problems else {"reason": str(exc)}
        typer.secho(f"error: cannot resolve {path}: {first['reason']}", fg=typer.colors.RED,
                    err=True)
        if len(exc.problems) > 1 or first.get("row") is not None:
            typer.echo(format_problems(exc.problems), err=True)
        raise typer.Exit(1) from None
    source = gdf.attrs.get(CRS_SOURCE)
    out = resolve(gdf, Resolver(engine(ctx), tree.resolve, tree.h3_resolution),
                  category=category, h3_resolution=tree.h3_resolution,
                  crs=source if gdf.crs is None else None)
    suffix = output.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        frame = out.drop(columns=out.geometry.name)
        frame.insert(0, "lat", out.geometry.y)
        frame.insert(0, "lon", out.geometry.x)
        neutralise_frame(frame).to_csv(output, index=False,
                                       sep="\t" if suffix == ".tsv" else ",")
    else:
        out.to_file(output)
    stats = out.attrs.get("gridcore_resolve", {})
    typer.echo(f"{len(out)} points resolved: {stats.get('covered', 0)} inside a grid, "
               f"{stats.get('snapped', 0)} snapped to the nearest grid (within "
               f"{stats.get('snap_m', tree.resolve.snap_m):g} m), {stats.get('outside', 0)} "
               f"outside → {output}")
    note = crs_note(gdf)
    if note:
        typer.echo(f"  {note}")
