"""``gridcore resolve FILE -o OUT`` and ``gridcore rules import|export`` (registered by
``gridcore.cli``; heavy imports stay inside the commands so ``gridcore --help`` is quick)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

rules_app = typer.Typer(help="Dispatch rules (权责清单): category × area → department.",
                        no_args_is_help=True)


def _engine():  # type: ignore[no-untyped-def]
    from layers.db.engine import check_server, make_engine
    from layers.db.migrate import migrate

    engine = make_engine()
    check_server(engine)
    migrate(engine)
    return engine


@rules_app.command("import")
def rules_import(path: Annotated[Path, typer.Argument(help="CSV: category_key, area_level, "
                                                          "area_code, department_code, note")]
                 ) -> None:
    """Replace all dispatch rules with the file's (validated first; all or nothing)."""
    from gridcore.errors import ImportRejected
    from layers.grids.dispatch_rules import import_csv

    try:
        n = import_csv(_engine(), path)
    except ImportRejected as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        for p in exc.problems:
            typer.secho(f"  row {p['row']} {p['field']}: {p['reason']}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{n} dispatch rules imported from {path}")


@rules_app.command("export")
def rules_export(output: Annotated[Path, typer.Option("-o", "--output", help="CSV to write")]
                 ) -> None:
    """Write the dispatch rules as CSV."""
    from layers.grids.dispatch_rules import export_csv

    text = export_csv(_engine(), output)
    typer.echo(f"{text.count(chr(10)) - 1} dispatch rules written to {output}")


def resolve_file(
    path: Annotated[Path, typer.Argument(help="points: GeoPackage, GeoJSON, Shapefile, CSV "
                                              "(lon/lat columns)…")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write (.gpkg, "
                                                                 ".geojson, .csv…)")],
    crs: Annotated[str | None, typer.Option(help="datum of the coordinates: EPSG:n, GCJ-02, "
                                                 "BD-09 (default: the file's, else WGS 84)")
                   ] = None,
    category: Annotated[str | None, typer.Option(help="column of class keys (P0101…) for the "
                                                      "department")] = None,
    lon_field: Annotated[str | None, typer.Option(help="CSV longitude column")] = None,
    lat_field: Annotated[str | None, typer.Option(help="CSV latitude column")] = None,
) -> None:
    """Add grid, community, street, district, department and H3 columns to every point."""
    from layers.exchange.imports.reading import read_file
    from layers.grids.resolver import Resolver
    from spatial import crs as crs_mod
    from spatial.batch import resolve

    custom = crs is not None and crs_mod.normalise_crs(crs) in (crs_mod.GCJ02, crs_mod.BD09)
    gdf = read_file(path, "parts", "EPSG:4326" if custom else crs, lon_field=lon_field,
                    lat_field=lat_field)
    out = resolve(gdf, Resolver(_engine()), category=category,
                  crs=crs_mod.normalise_crs(crs) if custom else None)
    suffix = output.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        frame = out.drop(columns=out.geometry.name)
        frame.insert(0, "lat", out.geometry.y)
        frame.insert(0, "lon", out.geometry.x)
        frame.to_csv(output, index=False, sep="\t" if suffix == ".tsv" else ",")
    else:
        out.to_file(output)
    inside = int(out["inside"].sum())
    typer.echo(f"{len(out)} points resolved ({inside} inside the grids, "
               f"{len(out) - inside} outside) → {output}")


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
    app.command("resolve")(resolve_file)
