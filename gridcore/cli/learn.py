"""``gridcore learn`` (train the models on the stored history) and ``gridcore forecast`` (the
patrol list and the warnings of the week)."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from gridcore.cli.common import audit_cli, engine, settings

if TYPE_CHECKING:
    from sqlalchemy import Engine


def learn(ctx: typer.Context,
          kind: Annotated[str, typer.Option(
              help="classify, dispatch, forecast, similar (the similar-case index file every "
                   "server process maps), or several joined by commas")] =
          "classify,dispatch,forecast,similar",
          evaluate: Annotated[bool, typer.Option(
              "--evaluate", help="print the held-out scores only: store and activate nothing")]
          = False,
          since: Annotated[datetime | None, typer.Option(
              help="learn from cases opened since (the city's time without an offset)")]
          = None,
          force: Annotated[bool, typer.Option(
              "--force", help="activate even when worse than the active model")] = False,
          full: Annotated[bool, typer.Option(
              "--full", help="similar: refit the index over every case instead of merging "
                             "the cases stored since the current version")] = False,
          ) -> None:
    """Train the models on the stored case history (imported and live), print their held-out
    scores next to the baselines, store them and activate each unless worse than the active."""
    from layers.intelligence.learning import learn as run

    made = engine(ctx)
    timezone = settings(ctx).cases.city_timezone  # the forecast's weeks: Monday 00:00 there
    kinds = [k.strip() for k in kind.split(",") if k.strip()]
    index = "similar" in kinds
    kinds = [k for k in kinds if k != "similar"]
    for item in run(made, kinds, evaluate_only=evaluate, since=since, force=force,
                    trained_by=f"cli:{getpass.getuser()}", timezone=timezone) if kinds else []:
        typer.secho(f"{item.kind}:", bold=True)
        if item.trained is None:
            typer.echo(f"  not trained: {item.why}")
            continue
        t = item.trained
        typer.echo(f"  {t.n_cases:,} cases {t.data_from:%Y-%m-%d} … {t.data_to:%Y-%m-%d}")
        for line in t.table():
            typer.echo(line)
        for note in t.notes:
            typer.echo(f"  note: {note}")
        if item.stored is None:
            typer.echo(f"  {item.why}")
            continue
        state = "ACTIVE" if item.activated else "stored, NOT activated"
        typer.echo(f"  {state}: {item.stored.describe()} — {item.why}")
        audit_cli(made, "model.learn", f"{item.kind} v{item.stored.version}",
                  {"activated": item.activated, "metric": t.metric, "score": t.score,
                   "why": item.why})
    if index and not evaluate:
        _publish_similar(ctx, made, full)


def _publish_similar(ctx: typer.Context, made: Engine, full: bool) -> None:
    from layers.intelligence.similar_files import publish

    tree = settings(ctx)
    typer.secho("similar:", bold=True)
    done = publish(made, tree.intelligence.index_root(tree.database.data_dir), full=full)
    if done is None:
        typer.echo("  no case has a description yet: no index")
        return
    typer.echo(f"  {done.summary()}")
    typer.echo(f"  {done.size_bytes / 2 ** 20:.1f} MiB in {done.folder} (every server process "
               "maps it read-only at its next question)")
    audit_cli(made, "similar.publish", done.folder.name,
              {"cases": done.cases, "bytes": done.size_bytes, "mode": done.mode,
               "added": done.added, "why": done.why})


def forecast(ctx: typer.Context,
             level: Annotated[str, typer.Option(help="grid or community")] = "community",
             category: Annotated[str | None, typer.Option(help="one class key, e.g. P0120")]
             = None,
             limit: Annotated[int, typer.Option(min=1, max=10000)] = 20,
             warnings: Annotated[bool, typer.Option(
                 "--warnings", help="the areas running far above their expectation "
                                    "(全域预警) instead of the ranked list")] = False,
             ) -> None:
    """Next week's expected cases per area × class, highest first (未诉先办), from the active
    forecast model; or the warnings of the forecast week."""
    from gridcore.security.access import Scope
    from layers.intelligence import forecasts, models

    made = engine(ctx)
    timezone = settings(ctx).cases.city_timezone  # the city's week: Monday 00:00 there
    with made.connect() as conn:
        row = models.active_row(conn, "forecast")
        if row is None:
            typer.echo("no active forecast model: run `gridcore learn --kind forecast`")
            raise typer.Exit(1)
        everyone = Scope(city_wide=True)
        typer.echo(f"{row.describe()}")
        week = forecasts.week_answer(forecasts.forecast_week(conn, row.id), timezone)
        if week is not None:
            typer.echo(f"the week of {week['monday']}: {week['start']} … {week['end']} "
                       f"({timezone})")
        if warnings:
            found = forecasts.week_warnings(conn, row.id, level, everyone, timezone=timezone)
            typer.echo(f"{len(found)} warning(s) at {level} level")
            for w in found:
                typer.echo(f"  {w['area_code']:15s} {w['category_key']}  {w['observed']} cases "
                           f"against {w['expected']:.2f} expected (p = {w['p_value']:.1e})")
            return
        for r in forecasts.ranked(conn, row.id, level, everyone, category=category,
                                  limit=limit):
            typer.echo(f"  week of {r['week']:%Y-%m-%d}  {r['area_code']:15s} "
                       f"{(r['area_name'] or '')[:20]:20s} {r['category_key']} "
                       f"{(r['name_zh'] or '')[:10]:10s} expected {r['expected']:6.2f} "
                       f"(90 % ≤ {r['p90']:.0f})")
