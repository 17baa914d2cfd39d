"""``gridcore webhooks`` (outgoing webhooks and their delivery log) and ``gridcore supervise``
(one supervision sweep, 预警 · 自动督办, at now or at a given moment)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from gridcore.cli.common import engine, fail, settings

webhooks_app = typer.Typer(help="Outgoing webhooks (事件推送): JSON, 企业微信, 钉钉.",
                           no_args_is_help=True)


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


@webhooks_app.command("add")
def webhooks_add(
    ctx: typer.Context, name: str, url: str,
    format: Annotated[str, typer.Option(help="json | wecom | dingtalk")] = "json",
    kind: Annotated[list[str] | None, typer.Option(
        help="event kind (new, dispatched, yellow, red, sent_back, supervised, closed…); "
             "repeat or comma-separate; default all")] = None,
    area: Annotated[list[str] | None, typer.Option(help="area code prefix; repeat")] = None,
    category: Annotated[list[str] | None, typer.Option(help="class key or prefix")] = None,
    secret: Annotated[str | None, typer.Option(
        envvar="GRIDCORE_WEBHOOK_SECRET", help="signing secret (a 钉钉 SEC… key); "
                                               "default: generated and printed once")] = None,
) -> None:
    """Register a webhook; its signing secret is printed this once."""
    from layers.notifications import webhooks

    hook, shown = webhooks.add(engine(ctx), name, url, format, _split(kind), _split(area),
                               _split(category), secret)
    typer.echo(f"added webhook {hook.id} {hook.name} → {hook.as_dict()['url']} ({hook.format})")
    typer.echo(f"signing secret (shown once): {shown}")


@webhooks_app.command("list")
def webhooks_list(ctx: typer.Context,
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every webhook (without secrets)."""
    from layers.notifications import webhooks

    hooks = [h.as_dict() for h in webhooks.list_webhooks(engine(ctx))]
    if as_json:
        typer.echo(json.dumps(hooks, ensure_ascii=False, indent=2))
        return
    for h in hooks:
        typer.echo(f"{h['id']}\t{h['name']}\t{h['format']}\t{'on' if h['active'] else 'off'}"
                   f"\t{h['url']}\t{','.join(h['kinds']) or 'all kinds'}")


@webhooks_app.command("pause")
def webhooks_pause(ctx: typer.Context, webhook: str) -> None:
    """Stop delivering to a webhook (events meanwhile are not queued for it)."""
    from layers.notifications import webhooks

    webhooks.update(engine(ctx), webhook, active=False)
    typer.echo(f"paused {webhook}")


@webhooks_app.command("resume")
def webhooks_resume(ctx: typer.Context, webhook: str) -> None:
    from layers.notifications import webhooks

    webhooks.update(engine(ctx), webhook, active=True)
    typer.echo(f"resumed {webhook}")


@webhooks_app.command("remove")
def webhooks_remove(ctx: typer.Context, webhook: str) -> None:
    """Remove a webhook and its delivery log."""
    from layers.notifications import webhooks

    webhooks.remove(engine(ctx), webhook)
    typer.echo(f"removed {webhook}")


@webhooks_app.command("log")
def webhooks_log(ctx: typer.Context, webhook: str, limit: int = 20,
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The delivery log: each delivery, its state and attempts."""
    from layers.notifications import webhooks

    rows = webhooks.deliveries(engine(ctx), webhook, limit)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for d in rows:
        typer.echo(f"{d['id']}\tevent {d['event_id']} {d['kind']} case {d['case_id']}\t"
                   f"{d['state']}\tattempts {d['attempts']}\t{d['last_status'] or ''}\t"
                   f"{d['last_error']}")


@webhooks_app.command("retry")
def webhooks_retry(ctx: typer.Context, delivery: int) -> None:
    """Send a failed delivery again (a fresh round of attempts)."""
    from layers.notifications import webhooks

    webhooks.retry(engine(ctx), delivery)
    typer.echo(f"delivery {delivery} queued again")


@webhooks_app.command("deliver")
def webhooks_deliver(ctx: typer.Context) -> None:
    """Deliver what is due now, once (a running server does this by itself)."""
    from api.notify_text import event_text
    from layers.notifications import webhooks

    tree, eng = settings(ctx), engine(ctx)
    tz = tree.cases.working_calendar.tz
    while webhooks.fan_out(eng):
        pass
    sent = webhooks.deliver_due(eng, tree.notifications, lambda e: event_text(e, tz))
    typer.echo(f"{sent} deliveries attempted")


def supervise(ctx: typer.Context,
              now: Annotated[str | None, typer.Option(
                  help="judge the clocks at this moment (ISO 8601 with offset) instead of "
                       "now: to check a configuration, or in tests")] = None) -> None:
    """One supervision sweep: warn (预警) the clocks past 80 %, signal the overdue ones and
    supervise them automatically (自动督办) where configured — each once per clock."""
    from layers.cases.supervision import sweep
    from layers.grids.resolver import Resolver

    at = None
    if now is not None:
        try:
            at = datetime.fromisoformat(now)
        except ValueError:
            fail(f"--now {now!r} is not an ISO 8601 time (2026-12-06T17:30:00+08:00)")
        if at.tzinfo is None:
            fail("--now needs an offset (…+08:00 or …Z)")
    tree, eng = settings(ctx), engine(ctx)
    resolver = Resolver(eng, tree.resolve, tree.h3_resolution)
    result = sweep(eng, tree.cases, resolver, tree.notifications.auto_supervision, now=at)
    typer.echo(json.dumps(result.as_dict()))
