"""The ``gridcore`` command line: the one part of the domain package that does I/O. It builds
the settings tree once per invocation (``gridcore.cli.common``) and wires storage, the HTTP
service and the demo city into commands, one module per command group:

``db`` (cluster, migrations, backups) · ``data`` (import, export) · ``grids`` (draw, check,
resolve FILE) · ``cases`` (dispatch rules) · ``security`` (users, keys, audit) · ``teams`` ·
``notifications`` (webhooks, the supervision sweep) · ``demo`` · ``serve`` · ``config`` ·
``briefing`` · ``channels`` (devices, ingest mqtt, broker) · ``learn`` and ``forecast`` (the
intelligence room).
"""

from __future__ import annotations

import sys

import typer

from gridcore.cli import (
    archive,
    briefing,
    cases,
    channels,
    config,
    data,
    db,
    demo,
    grids,
    learn,
    notifications,
    security,
    serve,
    teams,
)
from gridcore.cli.common import Invocation
from gridcore.errors import GridcoreError

app = typer.Typer(help="gridcore — grid-based city management (网格化管理) on PostGIS.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _invocation(ctx: typer.Context) -> None:
    ctx.obj = Invocation()  # the settings tree, read once, on first use, for this run


app.add_typer(db.app, name="db")
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.add_typer(grids.app, name="grids")
app.command("resolve")(grids.resolve_file)
app.add_typer(cases.rules_app, name="rules")
app.add_typer(cases.cases_app, name="cases")
app.add_typer(data.import_app, name="import")
app.command("export")(data.export)
app.command("check")(grids.check)
app.command("archive")(archive.archive)
app.add_typer(security.users_app, name="users")
app.add_typer(security.keys_app, name="keys")
app.add_typer(security.audit_app, name="audit")
app.add_typer(teams.app, name="teams")
app.add_typer(notifications.webhooks_app, name="webhooks")
app.command("supervise")(notifications.supervise)
app.command("config")(config.config)
app.command("briefing")(briefing.briefing)
app.add_typer(channels.devices_app, name="devices")
app.add_typer(channels.ingest_app, name="ingest")
app.add_typer(channels.broker_app, name="broker")
app.command("learn")(learn.learn)
app.command("forecast")(learn.forecast)


def main() -> None:
    try:
        app()
    except GridcoreError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
