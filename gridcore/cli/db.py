"""``gridcore db``: the embedded cluster, migrations, backup and restore."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gridcore.cli.common import anchor_file, engine, fail, settings

app = typer.Typer(help="The database: embedded cluster, migrations, backups.",
                  no_args_is_help=True)


@app.command("start")
def start(ctx: typer.Context) -> None:
    """Start the embedded private cluster (initialising it on first use)."""
    from layers.db.cluster import EmbeddedCluster

    info = EmbeddedCluster(settings(ctx).database).start()
    typer.echo(f"embedded PostGIS running on port {info.port}, socket {info.socket_dir}")


@app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop the embedded private cluster."""
    from layers.db.cluster import EmbeddedCluster

    stopped = EmbeddedCluster(settings(ctx).database).stop()
    typer.echo("stopped" if stopped else "not running")


@app.command("status")
def status(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the data lives and whether the embedded cluster runs."""
    from layers.db.cluster import EmbeddedCluster

    database = settings(ctx).database
    if database.database_url:
        found: dict[str, object] = {"database_url": "set by GRIDCORE_DATABASE_URL"}
    else:
        found = EmbeddedCluster(database).status()
    if as_json:
        typer.echo(json.dumps(found))
    else:
        for key, value in found.items():
            typer.echo(f"{key}: {value}")


@app.command("url")
def url(ctx: typer.Context,
        tcp: Annotated[bool, typer.Option(help="loopback TCP instead of the socket")] = False
        ) -> None:
    """Print the SQLAlchemy URL of the database (starting the embedded cluster if needed)."""
    from layers.db.cluster import EmbeddedCluster, resolve_database_url

    database = settings(ctx).database
    if tcp and not database.database_url:
        typer.echo(EmbeddedCluster(database).start().tcp_url())
    else:
        typer.echo(resolve_database_url(database))


@app.command("migrate")
def migrate(ctx: typer.Context) -> None:
    """Bring the schema to the newest revision and load the taxonomy."""
    from layers.db.migrate import current_revision

    typer.echo(f"schema at {current_revision(engine(ctx))}")


@app.command("downgrade")
def downgrade(ctx: typer.Context,
              revision: Annotated[str, typer.Argument(help="target revision")] = "base",
              yes: Annotated[bool, typer.Option("--yes", help="confirm data loss")] = False
              ) -> None:
    """Downgrade the schema (drops data of the removed revisions)."""
    from layers.db.migrate import current_revision
    from layers.db.migrate import downgrade as run_downgrade

    if not yes:
        fail("downgrading drops data; repeat with --yes to confirm")
    made = engine(ctx, migrate=False)
    run_downgrade(made, revision)
    typer.echo(f"schema at {current_revision(made)}")


@app.command("grants")
def grants(ctx: typer.Context,
           app_role: Annotated[str | None, typer.Option(
               help="the application role (default GRIDCORE_DATABASE_APP_ROLE)")] = None
           ) -> None:
    """Print the SQL a DBA runs to give gridcore its two roles on their own PostgreSQL."""
    from layers.db.roles import database_name, grant_statements, role_statements

    database = settings(ctx).database
    role = app_role or database.database_app_role
    name = database_name(database)
    lines = [
        "-- gridcore's two roles (README, 'The two database roles'). Run as a superuser.",
        "-- The owner: migrations, backups, the command line (GRIDCORE_DATABASE_OWNER_URL).",
        "-- It owns the database; PostGIS needs a superuser to be installed once:",
        "--   CREATE ROLE gridcore_owner LOGIN PASSWORD '<owner password>';",
        f"--   CREATE DATABASE {name} OWNER gridcore_owner;",
        f"--   \\c {name}",
        "--   CREATE EXTENSION postgis;",
        "-- The application: what `gridcore serve` connects as (GRIDCORE_DATABASE_URL).",
        *(s + ";" for s in role_statements(role)),
        "-- After `gridcore db migrate` (as the owner), in the database, as the owner:",
        *(s + ";" for s in grant_statements(role, name)),
    ]
    typer.echo("\n".join(lines))


@app.command("backup")
def backup(ctx: typer.Context, path: Path) -> None:
    """Dump the database (pg_dump custom format) to PATH."""
    from layers.db.backup import backup as dump

    typer.echo(f"backup written to {dump(path, settings=settings(ctx).database)} "
               f"({path.stat().st_size} bytes)")


@app.command("restore")
def restore(ctx: typer.Context, path: Path,
            yes: Annotated[bool, typer.Option("--yes", help="confirm replacing data")] = False
            ) -> None:
    """Restore a backup into the database, replacing its contents (one transaction); or
    bring back a case archive (``gridcore archive``), adding its years to the database."""
    from layers.cases.archive import is_archive
    from layers.db.backup import restore as replay

    if not path.is_file():
        fail(f"{path}: no such file")
    if is_archive(path):
        from layers.cases.archive import restore as bring_back

        rows = bring_back(engine(ctx), path, actor="cli")
        typer.echo(f"restored {path}: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
        return
    if not yes:
        fail("restoring replaces the database contents; repeat with --yes")
    replay(path, settings=settings(ctx).database)
    # The restored audit chain is the backup's: anchor its head, so that verify checks the
    # restored log from here on (and the anchor file says when the restore happened).
    from layers.security import audit

    made = engine(ctx)
    found, anchors = audit.head(made), anchor_file(settings(ctx))
    if found is not None and anchors is not None:
        anchors.append(found, note=f"restored from {path.name}")
    typer.echo(f"restored {path}")


replica_app = typer.Typer(help="Hot standbys of the embedded cluster (streaming replication on "
                               "loopback) for GRIDCORE_READ_DATABASE_URL.",
                          no_args_is_help=True)
app.add_typer(replica_app, name="replica")
NameOpt = Annotated[str, typer.Option("--name", help="the replica's name")]


@replica_app.command("start")
def replica_start(ctx: typer.Context, name: NameOpt = "replica1",
                  port: Annotated[int | None, typer.Option(help="its port (first free after "
                                                                 "the primary's)")] = None
                  ) -> None:
    """Make the hot standby on first use (pg_basebackup + a replication slot), then start it;
    prints the URL for GRIDCORE_READ_DATABASE_URL."""
    from layers.db.replica import EmbeddedReplica

    info = EmbeddedReplica(settings(ctx).database, name).start(port)
    typer.echo(f"replica {name} running on port {info.port}, socket {info.socket_dir}")
    typer.echo(f"GRIDCORE_READ_DATABASE_URL={info.url()}")


@replica_app.command("stop")
def replica_stop(ctx: typer.Context, name: NameOpt = "replica1") -> None:
    """Stop the standby (its slot keeps the WAL it has not received: it catches up on start)."""
    from layers.db.replica import EmbeddedReplica

    stopped = EmbeddedReplica(settings(ctx).database, name).stop()
    typer.echo("stopped" if stopped else "not running")


@replica_app.command("remove")
def replica_remove(ctx: typer.Context, name: NameOpt = "replica1",
                   yes: Annotated[bool, typer.Option("--yes", help="confirm")] = False) -> None:
    """Stop the standby, drop its replication slot and delete its files."""
    from layers.db.replica import EmbeddedReplica

    if not yes:
        fail("removing a replica deletes its files; repeat with --yes")
    EmbeddedReplica(settings(ctx).database, name).remove()
    typer.echo(f"replica {name} removed")


@replica_app.command("status")
def replica_status(ctx: typer.Context,
                   as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every replica of the embedded cluster: running, slot, replay lag."""
    from layers.db.replica import replicas

    found = [r.status().as_dict() for r in replicas(settings(ctx).database)]
    if as_json:
        typer.echo(json.dumps(found))
        return
    if not found:
        typer.echo("no replicas (gridcore db replica start makes one)")
    for r in found:
        lag = ("?" if r["replay_lag_bytes"] is None
               else f"{r['replay_lag_bytes']} bytes, {r['replay_lag_s'] or 0:.3f} s")
        typer.echo(f"{r['name']}: port {r['port']}, "
                   f"{'running' if r['running'] else 'stopped'}, slot {r['slot']} "
                   f"{'active' if r['slot_active'] else 'inactive'}, replay lag {lag}")


@replica_app.command("url")
def replica_url(ctx: typer.Context, name: NameOpt = "replica1") -> None:
    """Print the replica's URL for the application role (GRIDCORE_READ_DATABASE_URL)."""
    from layers.db.replica import EmbeddedReplica

    typer.echo(EmbeddedReplica(settings(ctx).database, name).url("app"))
