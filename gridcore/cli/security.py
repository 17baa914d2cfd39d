"""``gridcore users``, ``gridcore keys``, ``gridcore audit``: people with their roles and areas,
API keys of machine clients, the tamper-evident audit log."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gridcore.cli.common import engine

users_app = typer.Typer(help="Users, their roles and areas (用户与辖区).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of Open311 clients and IoT sources.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log (审计日志).", no_args_is_help=True)
sessions_app = typer.Typer(help="Signed-in devices (设备会话): list them, revoke a lost phone's.",
                           no_args_is_help=True)
users_app.add_typer(sessions_app, name="sessions")


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: str,
    role: Annotated[str, typer.Option(help="grid_worker | dispatcher | department_handler | "
                                           "manager | analyst | admin")],
    area: Annotated[list[str] | None, typer.Option(
        help="area code (district 6 / street 9 / community 12 / grid 15 digits); repeat")] = None,
    department: Annotated[str | None, typer.Option(help="department code (handlers)")] = None,
    display_name: str = "",
    worker_code: Annotated[str | None, typer.Option(
        help="the grid worker of the register this account is (grid workers)")] = None,
    password: Annotated[str | None, typer.Option(
        envvar="GRIDCORE_NEW_PASSWORD", help="default: prompt (never echo)")] = None,
) -> None:
    """Add a user."""
    from layers.security.users import add_user

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    user = add_user(engine(ctx), username, password, role, department, tuple(area or ()),
                    display_name, worker_code=worker_code)
    typer.echo(f"added {user.username} ({user.role.value}) areas={','.join(user.areas) or '-'}")


@users_app.command("list")
def users_list(ctx: typer.Context,
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List users with role, department, areas and state."""
    from layers.security.users import list_users

    rows = [u.as_dict() for u in list_users(engine(ctx))]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        state = "disabled" if r["disabled"] else "active"
        typer.echo(f"{r['username']}\t{r['role']}\t{r['department'] or '-'}\t"
                   f"{','.join(r['areas']) or '-'}\t{state}")


@users_app.command("disable")
def users_disable(ctx: typer.Context, username: str) -> None:
    """Disable a user (their tokens stop working at once)."""
    from layers.security.users import set_disabled

    set_disabled(engine(ctx), username, True)
    typer.echo(f"disabled {username}")


@sessions_app.command("list")
def sessions_list(ctx: typer.Context,
                  username: Annotated[str | None, typer.Argument(help="one user's")] = None,
                  active: Annotated[bool, typer.Option(help="open sessions only")] = False,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List device sessions: id, user, device, last use, state."""
    from layers.security.sessions import list_sessions

    rows = list_sessions(engine(ctx), username, active)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, default=str))
        return
    for r in rows:
        state = "active" if r["active"] else ("revoked" if r["revoked_at"] else "expired")
        typer.echo(f"{r['id']}\t{r['username']}\t{r['device'] or '-'}\t"
                   f"{r['last_used_at']:%Y-%m-%d %H:%M}\t{r['last_addr'] or '-'}\t{state}")


@sessions_app.command("revoke")
def sessions_revoke(
        ctx: typer.Context,
        session_id: Annotated[str | None, typer.Argument(help="the session's id")] = None,
        user: Annotated[str | None, typer.Option(help="every session of this user")] = None,
        reason: str = "revoked from the command line") -> None:
    """Revoke a session (its refresh and access tokens stop working at once), or all of a
    user's with --user."""
    from layers.security.sessions import revoke, revoke_user

    if (session_id is None) == (user is None):
        raise typer.BadParameter("give a session id or --user, not both")
    if user is not None:
        count = revoke_user(engine(ctx), user, "cli", reason)
        typer.echo(f"revoked {count} session(s) of {user}")
    else:
        assert session_id is not None
        revoke(engine(ctx), session_id, "cli", reason)
        typer.echo(f"revoked {session_id}")


@keys_app.command("add")
def keys_add(ctx: typer.Context, owner: str,
             purpose: Annotated[str, typer.Option(help="open311 | iot")]) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from layers.security.users import add_key

    typer.echo(add_key(engine(ctx), owner, purpose))


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_or_prefix: str) -> None:
    """Revoke a key by its prefix (or the whole key)."""
    from layers.security.users import revoke_key

    revoke_key(engine(ctx), key_or_prefix)
    typer.echo("revoked")


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """List API keys: prefix, purpose, owner, state."""
    from layers.security.users import list_keys

    for k in list_keys(engine(ctx)):
        typer.echo(f"{k['prefix']}\t{k['purpose']}\t{k['owner']}\t"
                   f"{'revoked' if k['revoked'] else 'active'}")


@audit_app.command("verify")
def audit_verify(ctx: typer.Context,
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check the hash chain; exit 1 naming the first broken row."""
    from layers.security.audit import verify

    report = verify(engine(ctx))
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    elif report.ok:
        typer.echo(f"audit chain intact: {report.rows} rows")
    else:
        typer.secho(f"audit chain BROKEN at row {report.first_broken_seq}: {report.reason}",
                    fg=typer.colors.RED, err=True)
    if not report.ok:
        raise typer.Exit(1)
