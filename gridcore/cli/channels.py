"""``gridcore devices``, ``gridcore ingest mqtt``, ``gridcore broker``: the machine channels
(机器发现) — the device registry, the MQTT consumer that files their alarms, and the embedded
MQTT broker of the demo."""

from __future__ import annotations

import json
import logging
import math
import signal
from typing import Annotated

import typer

from gridcore.cli.common import engine, settings

devices_app = typer.Typer(help="The device registry (设备台账): sensors and cameras, their "
                               "places and the classes their alarms map to.",
                          no_args_is_help=True)
ingest_app = typer.Typer(help="Channels that file reports by themselves.", no_args_is_help=True)
broker_app = typer.Typer(help="The embedded MQTT broker (mosquitto on loopback, files under "
                              "<data dir>/mqtt).", no_args_is_help=True)


@devices_app.command("add")
def devices_add(ctx: typer.Context, code: str,
                source: Annotated[str, typer.Option(help="iot | video")],
                alarm: Annotated[list[str], typer.Option(
                    help="alarm kind=class, e.g. tilt=P0101 (repeat)")],
                kind: Annotated[str, typer.Option(help="manhole_tilt, water_level, camera…")
                                ] = "",
                name: str = "",
                part: Annotated[str | None, typer.Option(
                    help="the city part it watches (its place, unless --lon/--lat)")] = None,
                lon: float | None = None, lat: float | None = None,
                trusted: Annotated[bool, typer.Option(
                    help="its reports are verified by the system")] = False,
                active: bool = True) -> None:
    """Register a device, or update it."""
    from gridcore.devices import Device, parse_alarm_map
    from layers.channels.devices import add_device

    device = Device(code, source, math.nan if lon is None else lon,
                    math.nan if lat is None else lat, parse_alarm_map(";".join(alarm)), name,
                    kind, part, trusted, active)
    created = add_device(engine(ctx), device)
    typer.echo(f"{'added' if created else 'updated'} device {code}")


@devices_app.command("import")
def devices_import(ctx: typer.Context, path: str) -> None:
    """Devices from a CSV: code, name, kind, source, part_code, lon, lat, alarms
    (tilt=P0101;open=P0101), trusted, active. All or nothing."""
    from gridcore.errors import ImportRejected
    from layers.channels.devices import import_devices
    from layers.exchange.imports.report import format_problems

    try:
        inserted, updated = import_devices(engine(ctx), path)
    except ImportRejected as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        typer.echo(format_problems(exc.problems), err=True)
        raise typer.Exit(1) from None
    typer.echo(f"devices: {inserted} inserted, {updated} updated")


@devices_app.command("list")
def devices_list(ctx: typer.Context,
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Devices with their classes, last word and open cases."""
    from layers.channels.devices import list_devices

    devices = list_devices(engine(ctx))
    if as_json:
        typer.echo(json.dumps(devices, ensure_ascii=False, indent=2, default=str))
        return
    for d in devices:
        alarms = ";".join(f"{k}={v}" for k, v in d["alarms"].items())
        typer.echo(f"{d['code']}\t{d['source']}\t{alarms}\t{d['last_state'] or '-'}\t"
                   f"{len(d['open_cases'])} open")


@ingest_app.command("mqtt")
def ingest_mqtt(ctx: typer.Context,
                stats_every: Annotated[float, typer.Option(
                    help="seconds between the counters in the log")] = 60.0) -> None:
    """Subscribe to the alarm topic (GRIDCORE_MQTT_*) and file alarms as cases until stopped
    (SIGTERM / Ctrl-C); reconnects with back-off when the broker goes away."""
    from layers.cases.intake import Intake
    from layers.channels.alarms import AlarmService
    from layers.channels.mqtt import AlarmConsumer
    from layers.grids.resolver import Resolver

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    tree = settings(ctx)
    made = engine(ctx)
    resolver = Resolver(made, tree.resolve, tree.h3_resolution)
    service = AlarmService(made, Intake(made, resolver, tree.cases), resolver, tree.cases)
    consumer = AlarmConsumer(service, tree.channels)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    typer.echo(f"consuming {tree.channels.mqtt_topic} on {tree.channels.mqtt_host}:"
               f"{tree.channels.mqtt_port} (Ctrl-C to stop)")
    try:
        consumer.run_forever(stats_every)
    except KeyboardInterrupt:
        pass
    finally:
        resolver.close()
        typer.echo(f"stopped; alarms: {json.dumps(consumer.stats, sort_keys=True)}")


def _broker(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from layers.channels.broker import EmbeddedBroker

    tree = settings(ctx)
    return EmbeddedBroker(tree.database.data_dir / "mqtt", tree.channels.mqtt_port)


@broker_app.command("start")
def broker_start(ctx: typer.Context) -> None:
    """Start the embedded broker (no-op when it runs)."""
    broker = _broker(ctx).start()
    typer.echo(f"mqtt broker on 127.0.0.1:{broker.port} (pid {broker.pid()}, "
               f"log {broker.log_file})")


@broker_app.command("stop")
def broker_stop(ctx: typer.Context) -> None:
    _broker(ctx).stop()
    typer.echo("mqtt broker stopped")


@broker_app.command("status")
def broker_status(ctx: typer.Context) -> None:
    broker = _broker(ctx)
    if broker.running():
        typer.echo(f"running on 127.0.0.1:{broker.port} (pid {broker.pid()})")
    else:
        typer.echo("not running")
        raise typer.Exit(3)


