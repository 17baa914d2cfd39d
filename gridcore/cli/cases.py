"""``gridcore rules import|export``: the dispatch rules (权责清单) that propose a department
for every case, category × area → department; ``gridcore cases escalate-overdue``: the
system's escalation sweep (自动升级)."""

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


cases_app = typer.Typer(help="Sweeps over the stored cases.", no_args_is_help=True)


@cases_app.command("escalate-overdue")
def escalate_overdue(ctx: typer.Context,
                     limit: Annotated[int, typer.Option(min=1, help="cases per run")] = 1000
                     ) -> None:
    """Escalate (自动升级) every overdue case held at the community or street level whose class
    escalates by itself (gridcore/data/escalation.csv): the team one level up takes it, with
    the reason in its history. ``gridcore serve`` runs the same sweep every
    GRIDCORE_ESCALATION_INTERVAL_S; this command is one sweep now (cron, or by hand)."""
    from gridcore.cli.common import settings
    from layers.cases.escalation import escalate_overdue as sweep
    from layers.grids.resolver import Resolver

    tree = settings(ctx)
    made = engine(ctx)
    resolver = Resolver(made, tree.resolve, tree.h3_resolution)
    try:
        done = sweep(made, tree.cases, resolver, limit=limit)
    finally:
        resolver.close()
    typer.echo(f"{len(done.escalated)} case(s) escalated"
               + "".join(f"\n  {c}" for c in done.escalated))
    for case_id, why in done.left.items():
        typer.echo(f"case {case_id} left where it is: {why}")
