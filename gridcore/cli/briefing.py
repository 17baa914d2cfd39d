"""``gridcore briefing``: a period's data briefing (数据简报) for an area, as PDF or HTML."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from gridcore.cli.common import engine, fail, settings
from gridcore.evaluation import Period


def briefing(ctx: typer.Context,
             period: Annotated[str, typer.Option(help="2026-11, 2026-Q4, 2026 or "
                                                      "2026-11-03/2026-11-17")],
             output: Annotated[Path, typer.Option("-o", "--output",
                                                  help="briefing.pdf or briefing.html")],
             area: Annotated[str | None, typer.Option(help="district, street or community "
                                                           "code (default: the one district)")]
             = None,
             lang: Annotated[str, typer.Option(help="zh-CN or en")] = "zh-CN") -> None:
    """Write the data briefing of PERIOD for AREA: key figures against the previous period
    and a year earlier, top problem classes, best and worst departments and streets, maps,
    charts and a summary."""
    from api.routes.briefing_doc import briefing_html, briefing_pdf
    from api.routes.evaluation import evaluation_model

    if output.suffix.lower() not in (".pdf", ".html"):
        fail(f"{output}: the output must end in .pdf or .html")
    if lang not in ("zh-CN", "en"):
        fail(f"--lang must be zh-CN or en, not {lang!r}")
    tree = settings(ctx)
    started = time.monotonic()
    p = Period.parse(period)
    eng = engine(ctx)
    model = evaluation_model(tree)
    if output.suffix.lower() == ".pdf":
        output.write_bytes(briefing_pdf(eng, tree.cases, model, p, area, lang))
    else:
        output.write_text(briefing_html(eng, tree.cases, model, p, area, lang,
                                        stylesheet=""), "utf-8")
    typer.echo(f"briefing {p} written to {output} in {time.monotonic() - started:.1f}s")
