"""``gridcore db``: the embedded cluster, migrations, backup and restore."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gridcore.cli.common import engine, fail, settings

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
    """Restore a backup into the database, replacing its contents (one transaction)."""
    from layers.db.backup import restore as replay

    if not yes:
        fail("restoring replaces the database contents; repeat with --yes")
    replay(path, settings=settings(ctx).database)
    typer.echo(f"restored {path}")
