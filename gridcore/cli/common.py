"""What every command shares: the settings tree, built once per invocation (the root callback
of ``gridcore.cli``), the engine on its database, failures and the audit of command-line writes.

Commands import their I/O (storage, the HTTP service) inside their bodies, so that
``gridcore --help`` stays quick and no command pays for another's imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from gridcore.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass
class Invocation:
    """One run of the command line: its settings tree, read from the environment on first
    use (``gridcore --help`` reads nothing)."""

    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings()
        return self._settings


def settings(ctx: typer.Context) -> Settings:
    """The invocation's settings tree (the same object for every use in one run)."""
    invocation: Invocation = ctx.ensure_object(Invocation)
    return invocation.settings


def engine(ctx: typer.Context, migrate: bool = True) -> Engine:
    """An engine on the configured database, its server checked (and the schema migrated)."""
    from layers.db.engine import check_server, make_engine
    from layers.db.migrate import migrate as run_migrations

    made = make_engine(settings(ctx).database)
    check_server(made)
    if migrate:
        run_migrations(made)
    return made


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def audit_cli(engine: Engine, action: str, target: str,
              details: dict[str, Any] | None = None) -> None:
    """Audit a write made from the command line, by the operating-system user who ran it.
    Recorded right after the write's own transaction (the loaders own theirs)."""
    import getpass
    import socket

    from layers.security import audit

    with engine.begin() as conn:
        audit.record(conn, f"cli:{getpass.getuser()}", action, target, details or {},
                     f"local:{socket.gethostname()}")
