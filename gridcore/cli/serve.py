"""``gridcore serve``: the HTTP service, one process or several (``api.serving``)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from gridcore.cli.common import engine, fail, settings


def _check_port(host: str, port: int) -> None:
    """Refuse before saying "serving on" when the address cannot be listened on (in use,
    not this machine's): the server would only log it after the announcement."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        fail(f"error: cannot listen on {host}:{port}: {exc}")
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            fail(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}")


def serve(ctx: typer.Context,
          host: Annotated[str | None, typer.Option(help="bind address")] = None,
          port: Annotated[int | None, typer.Option(help="port")] = None,
          workers: Annotated[int | None, typer.Option(
              min=1, help="worker processes (default GRIDCORE_WORKERS or 1; use the number "
                          "of cores for throughput)")] = None) -> None:
    """Run the HTTP service (migrating the schema first)."""
    tree = settings(ctx)
    if host:
        tree.api.host = host
    if port:
        tree.api.port = port
    if workers:
        tree.api.workers = workers
    api = tree.api
    tree.security.check()  # a refusal (a default secret…) comes before any "serving on"
    # …and a taken port: both before the app is imported (seconds of CPU: its models' and
    # maps' libraries) and before the schema is migrated
    _check_port(api.host, api.port)
    engine(ctx).dispose()  # checked and migrated; each worker opens its own pool
    import uvicorn

    from api.app import create_app

    app = create_app(tree) if api.workers == 1 else None
    typer.echo(f"gridcore serving on http://{api.host}:{api.port}/docs "
               f"({api.workers} worker{'s' if api.workers > 1 else ''})")
    if app is not None:
        uvicorn.run(app, host=api.host, port=api.port, timeout_graceful_shutdown=10)
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
