"""``gridcore rules import|export``: the dispatch rules (权责清单) that propose a department
for every case, category × area → department."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridcore.cli.common import engine

rules_app = typer.Typer(help="Dispatch rules (权责清单): category × area → department.",
                        no_args_is_help=True)


@rules_app.command("import")
def rules_import(ctx: typer.Context,
                 path: Annotated[Path, typer.Argument(help="CSV: category_key, area_level, "
                                                           "area_code, department_code, note")]
                 ) -> None:
    """Replace all dispatch rules with the file's (validated first; all or nothing)."""
    from gridcore.errors import ImportRejected
    from layers.grids.dispatch_rules import import_csv

    try:
        n = import_csv(engine(ctx), path)
    except ImportRejected as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        for p in exc.problems:
            typer.secho(f"  row {p['row']} {p['field']}: {p['reason']}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{n} dispatch rules imported from {path}")


@rules_app.command("export")
def rules_export(ctx: typer.Context,
                 output: Annotated[Path, typer.Option("-o", "--output", help="CSV to write")]
                 ) -> None:
    """Write the dispatch rules as CSV."""
    from layers.grids.dispatch_rules import export_csv

    text = export_csv(engine(ctx), output)
    typer.echo(f"{text.count(chr(10)) - 1} dispatch rules written to {output}")
