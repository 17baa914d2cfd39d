"""``gridcore archive``: whole years of settled cases to a file (``layers.cases.archive``);
``gridcore db restore FILE`` brings them back."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from gridcore.cli.common import engine, fail


def archive(ctx: typer.Context,
            before: Annotated[str, typer.Option(
                "--before", help="archive the partitions (years of report, UTC) that end on or "
                                 "before this date, e.g. 2024-01-01")],
            to: Annotated[Path | None, typer.Option(
                "--to", help="the archive file (default cases-before-DATE.gcarchive)")] = None,
            as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Move whole years of settled cases, with their history, photos' records, appeals and
    every other dependent row, to one file, and drop them from the database (one
    transaction; the file is written and checked first). Restore: gridcore db restore FILE."""
    from layers.cases.archive import archive as run

    try:
        cut = date.fromisoformat(before)
    except ValueError:
        fail(f"--before {before!r} is not a date (YYYY-MM-DD)", code=2)
    path = to or Path(f"cases-before-{cut.isoformat()}.gcarchive")
    report = run(engine(ctx), cut, path, actor=f"cli:{_user()}")
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    if not report.partitions:
        typer.echo(f"nothing to archive: no partition of cases ends on or before {cut} "
                   f"(checked at {datetime.now().isoformat(timespec='seconds')})")
        return
    rows = ", ".join(f"{t} {n:,}" for t, n in report.rows.items())
    typer.echo(f"archived {', '.join(report.partitions)} to {report.path} "
               f"({report.bytes:,} bytes): {rows}")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in a container: still audited
        return "unknown"
