"""``gridcore users``, ``gridcore keys``, ``gridcore audit``: people with their roles and areas,
API keys of machine clients, the tamper-evident audit log."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from gridcore.cli.common import anchor_file, engine, fail, settings

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
                   f"{','.join(r['areas']) or '-'}\t{r['worker_code'] or '-'}\t{state}")


@users_app.command("link-worker")
def users_link_worker(
    ctx: typer.Context, username: str,
    worker_code: Annotated[str | None, typer.Argument(
        help="the worker's code in the register (gridcore import workers)")] = None,
    unlink: Annotated[bool, typer.Option("--unlink", help="remove the link")] = False,
) -> None:
    """Link an account to its grid worker of the register: its patrols then count for that
    worker in evaluation (巡查覆盖率)."""
    from layers.security.users import link_worker

    if (worker_code is not None) == unlink:
        raise typer.BadParameter("give a WORKER_CODE or --unlink (not both)")
    user = link_worker(engine(ctx), username, None if unlink else worker_code)
    typer.echo(f"{user.username} → {user.worker_code or '(no worker)'}")


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
             purpose: Annotated[str, typer.Option(help="open311 | iot | video")]) -> None:
    """Create an API key; it is printed once and stored only as a hash. An iot / video key
    comes with the secret its alarms are signed with (derived from GRIDCORE_SECRET_KEY)."""
    from gridcore.security.access import SIGNED_PURPOSES
    from gridcore.security.signatures import signing_secret
    from layers.security.users import add_key

    key = add_key(engine(ctx), owner, purpose)
    typer.echo(key)
    if purpose in SIGNED_PURPOSES:
        secret = signing_secret(settings(ctx).security.signing_key(), key.split("_")[1])
        typer.echo(f"signing secret (HMAC-SHA256 of \"<timestamp>.<body>\"): {secret}")


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
                 anchor: Annotated[str | None, typer.Option(
                     help="an anchor line kept off the machine (`gridcore audit anchor`), or "
                          "@FILE holding one; default: the newest in the anchor file")] = None,
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check the hash chain as it is (nothing is sealed) and against its newest anchor; exit
    1 naming the first broken row, a cut or truncated log, or a rewritten chain."""
    from layers.security.audit import database_of, verify

    made = engine(ctx)
    problem, checked = _anchor_for(ctx, database_of(made), anchor)
    report = verify(made, checked)
    ok = report.ok and problem is None
    if as_json:
        typer.echo(json.dumps({**report.as_dict(), "ok": ok, "anchor_problem": problem}))
    elif ok:
        where = (f", anchored at position {report.anchored_pos} ({report.anchored_at})"
                 if checked else " (no anchor yet: the chain checked against itself only)")
        typer.echo(f"audit chain intact: {report.rows} rows{where}"
                   + (f"; {report.unsealed} not sealed yet" if report.unsealed else ""))
    else:
        reason = report.reason if not report.ok else problem
        at = f" at row {report.first_broken_seq}" if report.first_broken_seq else ""
        typer.secho(f"audit chain BROKEN{at}: {reason}", fg=typer.colors.RED, err=True)
    if not ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(ctx: typer.Context) -> None:
    """Print the newest anchor of this database's audit chain (one JSON line) — keep it off
    the machine. The chain's head is anchored first when it is newer than the newest anchor
    and the chain holds against that anchor (an upgraded database has none yet)."""
    from layers.security.audit import database_of, head, verify

    made = engine(ctx, migrate=False)
    problem, found = _anchor_for(ctx, database_of(made), None)
    anchors = anchor_file(settings(ctx))
    if anchors is None or problem:
        fail(problem or "no anchor file")
    report = verify(made, found)
    if not report.ok:
        fail(f"not anchored: the audit chain is broken: {report.reason}")
    current = head(made)
    if current is not None and (found is None or current.pos > found.pos):
        found = anchors.append(current, note="gridcore audit anchor")
    if found is None:
        fail("the audit chain is empty: nothing to anchor yet")
    typer.echo(found.line())


def _anchor_for(ctx: typer.Context, database: str, given: str | None
                ) -> tuple[str | None, Any]:
    """(a problem with the anchors, the anchor to check against)."""
    from pathlib import Path

    from gridcore.errors import ValidationError
    from layers.security.anchor import parse

    anchors = anchor_file(settings(ctx))
    if anchors is None:
        return "GRIDCORE_SECRET_KEY is not set: anchors cannot be signed or checked", None
    if given is not None:
        line = Path(given[1:]).read_text("utf-8").strip() if given.startswith("@") else given
        try:
            given_anchor = parse(line, anchors.secret)
        except ValidationError as exc:
            return str(exc), None
        if given_anchor.database != database:
            return f"that anchor is of database {given_anchor.database}, not {database}", None
        return None, given_anchor
    found, forged = anchors.latest(database)
    if forged:
        return (f"lines {', '.join(map(str, forged))} of {anchors.path} do not hold their "
                f"signature: the anchor file was edited"), found
    return None, found
