"""``gridcore config``: the effective settings tree, every variable with its value and where
the value came from (the environment or the default); secrets are never printed."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gridcore.cli.common import settings


def config(ctx: typer.Context,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the effective settings (GRIDCORE_* variables); secrets are hidden."""
    rows = list(settings(ctx).variables())
    if as_json:
        typer.echo(json.dumps([{"section": s, "variable": v, "value": value, "from": origin}
                               for s, v, value, origin in rows], ensure_ascii=False, indent=2))
        return
    width = max(len(v) for _, v, _, _ in rows)
    heading = None
    for section, variable, value, origin in rows:
        if section != heading:
            heading = section
            typer.echo(f"[{section or 'settings'}]")
        typer.echo(f"  {variable:<{width}}  {value or '(unset)'}"
                   + ("" if origin == "default" else f"   [{origin}]"))
