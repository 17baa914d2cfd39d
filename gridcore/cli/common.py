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
            self._settings = read_settings()
        return self._settings


def read_settings() -> Settings:
    """The settings tree from the environment; a value gridcore cannot use is an error that
    names it (``error: …`` and exit status 2 from ``gridcore.cli.main``), not a traceback."""
    from pydantic import ValidationError

    from gridcore.errors import InvalidConfiguration

    try:
        return Settings()
    except ValidationError as exc:
        # the inputs are left out: a section's input holds its passwords and keys
        lines = [f"{_variable(err['loc'])}: {str(err['msg']).removeprefix('Value error, ')}"
                 for err in exc.errors()]
        raise InvalidConfiguration("the settings are not valid — " + "; ".join(lines)
                                   ) from None


def _variable(loc: tuple[int | str, ...]) -> str:
    """The environment variable of an error's place in the tree (GRIDCORE_POOL_SIZE for
    database.pool_size), or the section's name for a check across its fields."""
    from gridcore.settings import PREFIX, Section

    names = [str(p) for p in loc]
    if not names:
        return "settings"
    field = Settings.model_fields.get(names[0])
    section = field.annotation if field is not None else None
    if len(names) == 1:
        is_section = isinstance(section, type) and issubclass(section, Section)
        return f"the {names[0]} settings" if is_section else f"{PREFIX}{names[0]}".upper()
    if isinstance(section, type) and issubclass(section, Section):
        return section.env_name(names[1])
    return ".".join(names)


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
