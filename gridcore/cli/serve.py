"""``gridcore serve``: the HTTP service, one process or several (``api.serving``)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from gridcore.cli.common import engine, settings


def serve(ctx: typer.Context,
          host: Annotated[str | None, typer.Option(help="bind address")] = None,
          port: Annotated[int | None, typer.Option(help="port")] = None,
          workers: Annotated[int | None, typer.Option(
              min=1, help="worker processes (default GRIDCORE_WORKERS or 1; use the number "
                          "of cores for throughput)")] = None) -> None:
    """Run the HTTP service (migrating the schema first)."""
    import uvicorn

    from api.app import create_app

    tree = settings(ctx)
    if host:
        tree.api.host = host
    if port:
        tree.api.port = port
    if workers:
        tree.api.workers = workers
    api = tree.api
    engine(ctx).dispose()  # checked and migrated; each worker opens its own pool
    typer.echo(f"gridcore serving on http://{api.host}:{api.port}/docs "
               f"({api.workers} worker{'s' if api.workers > 1 else ''})")
    if api.workers == 1:
        uvicorn.run(create_app(tree), host=api.host, port=api.port,
                    timeout_graceful_shutdown=10)
        return
    # Several processes need the app by import path; each builds it (and its settings) from
    # the environment, so the options given here travel as GRIDCORE_ variables. Each listens
    # on its own socket, so that connections spread over them (api.serving says why).
    from api.serving import serve_workers

    os.environ["GRIDCORE_HOST"], os.environ["GRIDCORE_PORT"] = api.host, str(api.port)
    status = serve_workers("api.app:create_app", api.host, api.port, api.workers,
                           hung_after_s=api.worker_hung_after_s, timeout_graceful_shutdown=10)
    if status:
        raise typer.Exit(status)
