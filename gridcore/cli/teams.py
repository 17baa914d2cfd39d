"""``gridcore teams``: a department's teams (班组), their members and leaders."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gridcore.cli.common import engine

app = typer.Typer(help="Teams (班组) of departments; a leader assigns cases to members.",
                  no_args_is_help=True)


@app.command("add")
def teams_add(ctx: typer.Context, code: str,
              department: Annotated[str, typer.Option(help="the department's code")],
              name: str = "") -> None:
    """Add a team to a department."""
    from layers.security.teams import add_team

    add_team(engine(ctx), code, department, name)
    typer.echo(f"added team {code} of {department}")


@app.command("join")
def teams_join(ctx: typer.Context, username: str, team: str,
               leader: Annotated[bool, typer.Option(help="as the team's leader")] = False
               ) -> None:
    """Put a department handler in a team (``--leader``: as its leader)."""
    from layers.security.teams import join_team

    join_team(engine(ctx), username, team, leader)
    typer.echo(f"{username} is now {'leader' if leader else 'a member'} of team {team}")


@app.command("leave")
def teams_leave(ctx: typer.Context, username: str) -> None:
    """Take a user out of their team."""
    from layers.security.teams import join_team

    join_team(engine(ctx), username, None)
    typer.echo(f"{username} is in no team now")


@app.command("list")
def teams_list(ctx: typer.Context, department: str | None = None,
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Teams with their members (the leader first)."""
    from layers.security.teams import list_teams

    teams = list_teams(engine(ctx), department)
    if as_json:
        typer.echo(json.dumps(teams, ensure_ascii=False, indent=2))
        return
    for t in teams:
        members = ", ".join(m["username"] + (" (leader)" if m["leader"] else "")
                            for m in t["members"]) or "-"
        typer.echo(f"{t['code']}\t{t['department']}\t{t['name']}\t{members}")
