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

    from layers.security.anchor import AnchorFile


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
    """An engine of the owner role on the configured database (the command line administers
    it), its server checked (and the schema migrated); the audit rows it seals are anchored."""
    from layers.db.engine import check_server, make_engine
    from layers.db.migrate import migrate as run_migrations
    from layers.security.audit import configure_anchor

    tree = settings(ctx)
    made = make_engine(tree.database, role="owner")
    check_server(made)
    if migrate:
        run_migrations(made, tree.database.database_app_role)
    configure_anchor(made, anchor_file(tree))
    return made


def anchor_file(tree: Settings) -> AnchorFile | None:
    """The audit anchor file, signed with the service's key (None without a usable key)."""
    from gridcore.errors import InsecureConfiguration
    from layers.security.anchor import AnchorFile

    try:
        key = tree.security.signing_key()
    except InsecureConfiguration:
        return None
    return AnchorFile(tree.security.audit_anchor_path(tree.database.data_dir), key)


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
