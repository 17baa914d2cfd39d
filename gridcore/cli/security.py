"""Command line of users, API keys, the audit log and backups (wired into ``gridcore.cli``).

Kept apart from ``cli.py`` so that file stays readable; like it, this module only wires I/O.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

users_app = typer.Typer(help="Users, their roles and areas (用户与辖区).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of Open311 clients and IoT sources.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log (审计日志).", no_args_is_help=True)


def audit_cli(engine, action: str, target: str, details: dict | None = None) -> None:  # type: ignore[no-untyped-def]
    """Audit a write made from the command line, by the operating-system user who ran it.
    Recorded right after the write's own transaction (the loaders own theirs)."""
    import getpass
    import socket

    from layers.security import audit

    with engine.begin() as conn:
        audit.record(conn, f"cli:{getpass.getuser()}", action, target, details or {},
                     f"local:{socket.gethostname()}")


def _engine():  # type: ignore[no-untyped-def]
    from gridcore.cli import _engine as engine

    return engine(migrate=True)


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[str, typer.Option(help="grid_worker | dispatcher | department_handler | "
                                           "manager | analyst | admin")],
    area: Annotated[list[str] | None, typer.Option(
        help="area code (district 6 / street 9 / community 12 / grid 15 digits); repeat")] = None,
    department: Annotated[str | None, typer.Option(help="department code (handlers)")] = None,
    display_name: str = "",
    password: Annotated[str | None, typer.Option(
        envvar="GRIDCORE_NEW_PASSWORD", help="default: prompt (never echo)")] = None,
) -> None:
    """Add a user."""
    from layers.security.users import add_user

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    user = add_user(_engine(), username, password, role, department, tuple(area or ()),
                    display_name)
    typer.echo(f"added {user.username} ({user.role.value}) areas={','.join(user.areas) or '-'}")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List users with role, department, areas and state."""
    from layers.security.users import list_users

    rows = [u.as_dict() for u in list_users(_engine())]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    for r in rows:
        state = "disabled" if r["disabled"] else "active"
        typer.echo(f"{r['username']}\t{r['role']}\t{r['department'] or '-'}\t"
                   f"{','.join(r['areas']) or '-'}\t{state}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user (their tokens stop working at once)."""
    from layers.security.users import set_disabled

    set_disabled(_engine(), username, True)
    typer.echo(f"disabled {username}")


@keys_app.command("add")
def keys_add(owner: str, purpose: Annotated[str, typer.Option(help="open311 | iot")]) -> None:
    """Create an API key; it is printed once and stored only as a hash."""
    from layers.security.users import add_key

    typer.echo(add_key(_engine(), owner, purpose))


@keys_app.command("revoke")
def keys_revoke(key_or_prefix: str) -> None:
    """Revoke a key by its prefix (or the whole key)."""
    from layers.security.users import revoke_key

    revoke_key(_engine(), key_or_prefix)
    typer.echo("revoked")


@keys_app.command("list")
def keys_list() -> None:
    from layers.security.users import list_keys

    for k in list_keys(_engine()):
        typer.echo(f"{k['prefix']}\t{k['purpose']}\t{k['owner']}\t"
                   f"{'revoked' if k['revoked'] else 'active'}")


@audit_app.command("verify")
def audit_verify(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check the hash chain; exit 1 naming the first broken row."""
    from layers.security.audit import verify

    report = verify(_engine())
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    elif report.ok:
        typer.echo(f"audit chain intact: {report.rows} rows")
    else:
        typer.secho(f"audit chain BROKEN at row {report.first_broken_seq}: {report.reason}",
                    fg=typer.colors.RED, err=True)
    if not report.ok:
        raise typer.Exit(1)


def db_backup(path: Path) -> None:
    """Dump the database (pg_dump custom format) to PATH."""
    from layers.db.backup import backup

    typer.echo(f"backup written to {backup(path)} ({path.stat().st_size} bytes)")


def db_restore(path: Path,
               yes: Annotated[bool, typer.Option("--yes", help="confirm replacing data")] = False
               ) -> None:
    """Restore a backup into the database, replacing its contents (one transaction)."""
    from layers.db.backup import restore

    if not yes:
        typer.secho("restoring replaces the database contents; repeat with --yes",
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    restore(path)
    typer.echo(f"restored {path}")


def register(app: typer.Typer, db_app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
    db_app.command("backup")(db_backup)
    db_app.command("restore")(db_restore)
