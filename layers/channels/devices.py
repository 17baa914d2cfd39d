"""The device registry (设备台账) in PostGIS: sensors and cameras, their places and the classes
their alarms map to, and the cases their alarms opened (``device_case``).

Writes come from the command line (``gridcore devices add | import``), audited; reads serve the
alarm rules (:mod:`layers.channels.alarms`) and ``GET /devices``. A device placed on a city part
takes the part's point unless given its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.devices import Device, check_device, parse_alarm_map
from gridcore.errors import GridcoreError, NotFound, ValidationError
from layers.exchange.imports.reading import read_csv_table
from layers.exchange.imports.report import Problems
from layers.schema.cases import OPEN_SQL
from layers.security import audit

_COLUMNS = "code, name, kind, source, part_code, ST_X(geom) AS lon, ST_Y(geom) AS lat, " \
           "alarms, trusted, active"
_UPSERT = text("""
INSERT INTO device (code, name, kind, source, part_code, geom, alarms, trusted, active)
VALUES (:code, :name, :kind, :source, :part_code, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
        CAST(:alarms AS jsonb), :trusted, :active)
ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind,
    source = excluded.source, part_code = excluded.part_code, geom = excluded.geom,
    alarms = excluded.alarms, trusted = excluded.trusted, active = excluded.active,
    updated_at = now()
RETURNING (xmax = 0) AS inserted
""")


def device_of(row: Mapping[str, Any] | Any) -> Device:
    return Device(row["code"], row["source"], row["lon"], row["lat"], dict(row["alarms"]),
                  row["name"], row["kind"], row["part_code"], row["trusted"], row["active"])


def _placed(conn: Connection, device: Device) -> Device:
    """The device at its part's point when it has no point of its own."""
    if device.part_code is None:
        return device
    part = conn.execute(text("SELECT ST_X(geom) AS lon, ST_Y(geom) AS lat FROM city_part "
                             "WHERE code = :c"), {"c": device.part_code}).mappings().first()
    if part is None:
        raise ValidationError(f"city part {device.part_code!r} does not exist",
                              field="part_code", value=device.part_code)
    if math.isfinite(device.lon) and math.isfinite(device.lat):
        return device
    return Device(device.code, device.source, part["lon"], part["lat"], device.alarms,
                  device.name, device.kind, device.part_code, device.trusted, device.active)


def _store(conn: Connection, device: Device) -> bool:
    device = _placed(conn, device)
    check_device(device)
    row = conn.execute(_UPSERT, {
        "code": device.code, "name": device.name, "kind": device.kind, "source": device.source,
        "part_code": device.part_code, "lon": device.lon, "lat": device.lat,
        "alarms": json.dumps(dict(device.alarms)), "trusted": device.trusted,
        "active": device.active}).one()
    return bool(row.inserted)


def add_device(engine: Engine, device: Device, actor: str = "cli") -> bool:
    """Register a device (or update it); True when it is new."""
    with engine.begin() as conn:
        created = _store(conn, device)
        audit.record(conn, actor, "device.add" if created else "device.update",
                     f"device:{device.code}", {"source": device.source,
                                               "alarms": dict(device.alarms)})
    return created


def _float(value: str) -> float:
    return float(value) if value.strip() else math.nan


def import_devices(engine: Engine, path: str | Path, actor: str = "cli") -> tuple[int, int]:
    """Devices from a CSV (code, name, kind, source, part_code, lon, lat, alarms, trusted,
    active); every bad row named, all or nothing. (inserted, updated)."""
    what = f"devices file {Path(path).name}"
    frame = read_csv_table(path, what, ("code", "source", "alarms"))
    problems = Problems(what)
    devices: list[tuple[int, Device]] = []
    for i, row in enumerate(frame.to_dict("records"), start=1):
        try:
            device = Device(
                code=row["code"].strip(), source=row["source"].strip(),
                lon=_float(row.get("lon", "")), lat=_float(row.get("lat", "")),
                alarms=parse_alarm_map(row["alarms"]), name=row.get("name", "").strip(),
                kind=row.get("kind", "").strip(), part_code=row.get("part_code", "").strip()
                or None, trusted=row.get("trusted", "").strip().lower() in ("true", "1", "yes"),
                active=row.get("active", "true").strip().lower() not in ("false", "0", "no"))
            # every rule but the part's existence (the database's) is checked up front
            check_device(replace(device, lon=0.0, lat=0.0) if device.part_code else device)
            devices.append((i, device))
        except ValueError as exc:
            problems.add(i, "lon", f"not a number: {exc}")
        except GridcoreError as exc:
            problems.add(i, exc.details.get("field"), str(exc))
    problems.raise_if_any()
    inserted = updated = 0
    with engine.begin() as conn:
        for i, device in devices:
            try:
                with conn.begin_nested():
                    created = _store(conn, device)
            except GridcoreError as exc:
                problems.add(i, exc.details.get("field"), str(exc))
                continue
            inserted += created
            updated += not created
        problems.raise_if_any()  # rolls the whole file back
        audit.record(conn, actor, "device.import", str(path),
                     {"inserted": inserted, "updated": updated})
    return inserted, updated


def get_device(conn: Connection, code: str, lock: bool = False) -> Device | None:
    """A device by code (``lock``: FOR UPDATE — one device's alarms are taken one at a time,
    so that two copies of one alarm cannot both open a case)."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM device WHERE code = :c"
                            + (" FOR UPDATE" if lock else "")), {"c": code}).mappings().first()
    return device_of(row) if row is not None else None


def open_cases(conn: Connection, code: str) -> dict[str, int]:
    """The device's open cases, class → case id (the newest, should there be two)."""
    rows = conn.execute(text(f"""
        SELECT d.category_key, d.case_id FROM device_case d
        JOIN case_record c ON c.id = d.case_id
        WHERE d.device_code = :c AND c.{OPEN_SQL}
        ORDER BY d.opened_at"""), {"c": code}).all()
    return {r.category_key: r.case_id for r in rows}


def link_case(conn: Connection, code: str, category: str, case_id: int, alarm: str,
              at: datetime) -> None:
    conn.execute(text("""
        INSERT INTO device_case (device_code, category_key, case_id, alarm, opened_at, last_at)
        VALUES (:d, :k, :c, :a, :at, :at) ON CONFLICT DO NOTHING"""),
                 {"d": code, "k": category, "c": case_id, "a": alarm, "at": at})


def count_repeat(conn: Connection, code: str, case_id: int, at: datetime) -> None:
    conn.execute(text("UPDATE device_case SET repeats = repeats + 1, last_at = :at "
                      "WHERE device_code = :d AND case_id = :c"),
                 {"d": code, "c": case_id, "at": at})


def seen(conn: Connection, code: str, alarm: str | None, state: str, at: datetime) -> None:
    conn.execute(text("UPDATE device SET last_seen_at = :at, last_alarm = :a, last_state = :s "
                      "WHERE code = :d"), {"d": code, "a": alarm, "s": state, "at": at})


def list_devices(engine: Engine, code: str | None = None) -> list[dict[str, Any]]:
    """Devices with their place, classes, last word and open cases."""
    with engine.connect() as conn:
        rows = conn.execute(text(f"""
            SELECT {_COLUMNS}, last_seen_at, last_alarm, last_state,
                   coalesce((SELECT json_agg(json_build_object(
                        'case_id', d.case_id, 'category', d.category_key,
                        'repeats', d.repeats, 'state', c.state) ORDER BY d.case_id)
                    FROM device_case d JOIN case_record c ON c.id = d.case_id
                    WHERE d.device_code = device.code AND c.{OPEN_SQL}), '[]') AS open_cases
            FROM device WHERE :code IS NULL OR code = :code ORDER BY code"""),
            {"code": code}).mappings().all()
    if code is not None and not rows:
        raise NotFound(f"device {code!r} does not exist", device=code)
    return [{**dict(r), "last_seen_at": r["last_seen_at"].isoformat()
             if r["last_seen_at"] else None} for r in rows]
