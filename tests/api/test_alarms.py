"""Machine discovery (机器发现) end to end: devices registered, alarms over a real mosquitto
broker and over the signed HTTP webhook — repeated alarms make one case, "normal" proposes
closing (or closes, where the class allows), the consumer survives garbage and a broker
restart, and the HTTP channel works while the broker is down."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from gridcore.devices import Device
from gridcore.security.signatures import sign, signing_secret
from gridcore.settings import ChannelSettings
from layers.channels.devices import add_device, list_devices
from layers.channels.mqtt import AlarmConsumer
from layers.security.users import add_key
from tests.support import helsinki_city
from tests.support.mqtt import mosquitto, publish, wait_until

TILT = Device("TILT-1", "iot", 24.9440, 60.1700, {"tilt": "P0101", "open": "P0101"},
              "井盖倾斜 1", "manhole_tilt")
WATER = Device("WL-1", "iot", 24.9460, 60.1720, {"water_high": "E0404"}, "积水 1",
               "water_level", trusted=True)
CAMERA = Device("CAM-1", "video", 24.9430, 60.1690, {"parking": "E0503"}, "摄像头 1", "camera")


@pytest.fixture
def devices(db: Engine) -> Engine:
    helsinki_city.plant(db)
    for device in (TILT, WATER, CAMERA):
        add_device(db, device)
    return db


def _cases(engine: Engine, device: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT c.id, c.state, c.source, c.reporter, c.category_key, c.close_proposal, "
            "d.repeats FROM device_case d JOIN case_record c ON c.id = d.case_id "
            "WHERE d.device_code = :d ORDER BY c.id"), {"d": device}).mappings()]


def _actions(engine: Engine, case_id: int) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(
            "SELECT action FROM case_history WHERE case_id = :c ORDER BY id"), {"c": case_id})]


@pytest.fixture
def consumer(client: TestClient, devices: Engine, tmp_path: Path
             ) -> Iterator[tuple[AlarmConsumer, Any]]:
    """A real broker and the consumer on it, filing through the app's own alarm service."""
    with mosquitto(tmp_path / "mqtt") as broker:
        settings = ChannelSettings(mqtt_port=broker.port, mqtt_backoff_max_s=2,
                                   mqtt_client_id=f"test-{broker.port}")
        made = AlarmConsumer(client.app.state.alarms, settings)  # type: ignore[attr-defined]
        made.start()
        assert made.connected.wait(10), "the consumer did not connect"
        try:
            yield made, broker
        finally:
            made.stop()


def test_mqtt_repeats_make_one_case_and_normal_proposes_closing(
        consumer: tuple[AlarmConsumer, Any], devices: Engine) -> None:
    made, broker = consumer
    topic = "gridcore/devices/TILT-1/alarm"
    for i in range(3):
        publish(broker.port, topic, {"alarm": "tilt", "value": 30 + i, "id": f"m{i}",
                                     "at": "2026-12-07T09:00:00+08:00",
                                     "source": "citizen"})  # a source in the body is ignored
    wait_until(lambda: made.stats.get("repeat", 0) == 2, what="two repeats")
    cases = _cases(devices, "TILT-1")
    assert len(cases) == 1 and cases[0]["repeats"] == 2
    case = cases[0]
    assert (case["state"], case["source"], case["reporter"]) == ("reported", "iot", "TILT-1")
    assert _actions(devices, case["id"]) == ["report", "alarm", "alarm"]
    publish(broker.port, topic, {"alarm": "tilt", "id": "m0"})  # the first one, redelivered
    wait_until(lambda: made.stats.get("received", 0) == 4, what="the redelivery")
    assert len(_cases(devices, "TILT-1")) == 1
    publish(broker.port, topic, {"alarm": "tilt", "state": "normal"})
    wait_until(lambda: made.stats.get("close_proposed", 0) == 1, what="the close proposal")
    case = _cases(devices, "TILT-1")[0]
    assert case["state"] == "reported" and "on-site check" in case["close_proposal"]["reason"]
    assert _actions(devices, case["id"])[-1] == "propose_close"
    # a new alarm after the case is closed opens a new one (not the closed case)
    with devices.begin() as conn:
        conn.execute(text("UPDATE case_record SET state = 'closed' WHERE id = :c"),
                     {"c": case["id"]})
    publish(broker.port, topic, {"alarm": "open", "id": "m9"})
    wait_until(lambda: len(_cases(devices, "TILT-1")) == 2, what="a second case")


def test_trusted_device_is_verified_and_closed_by_its_normal(
        consumer: tuple[AlarmConsumer, Any], devices: Engine) -> None:
    made, broker = consumer
    publish(broker.port, "gridcore/devices/WL-1/alarm", {"alarm": "water_high", "value": 0.4})
    wait_until(lambda: made.stats.get("filed", 0) == 1, what="the water alarm")
    case = _cases(devices, "WL-1")[0]
    assert case["state"] == "verified"  # trusted: verified by the system
    publish(broker.port, "gridcore/devices/WL-1/alarm", {"alarm": "normal"})
    wait_until(lambda: made.stats.get("closed", 0) == 1, what="the automatic close")
    case = _cases(devices, "WL-1")[0]
    assert case["state"] == "closed"
    assert _actions(devices, case["id"]) == ["report", "verify", "auto_close"]
    publish(broker.port, "gridcore/devices/WL-1/alarm", {"alarm": "normal"})
    wait_until(lambda: made.stats.get("ignored", 0) == 1, what="normal with nothing open")


def test_garbage_is_counted_and_the_consumer_goes_on(
        consumer: tuple[AlarmConsumer, Any], devices: Engine) -> None:
    made, broker = consumer
    garbage: list[tuple[str, Any]] = [
        ("gridcore/devices/TILT-1/alarm", b"not json at all"),
        ("gridcore/devices/TILT-1/alarm", b"\xff\xfe\x00"),
        ("gridcore/devices/TILT-1/alarm", "[1, 2, 3]"),
        ("gridcore/devices/TILT-1/alarm", {"alarm": "tilt", "value": "high"}),
        ("gridcore/devices/TILT-1/alarm", {"alarm": "tilt", "at": "yesterday"}),
        ("gridcore/devices/TILT-1/alarm", {"device": "CAM-1", "alarm": "tilt"}),
        ("gridcore/devices/TILT-1/alarm", b"{" * 70_000),
    ]
    refused: list[tuple[str, Any]] = [
        ("gridcore/devices/NOPE-9/alarm", {"alarm": "tilt"}),       # not registered
        ("gridcore/devices/TILT-1/alarm", {"alarm": "smoke"}),      # no class for this alarm
    ]
    for topic, payload in garbage + refused:
        publish(broker.port, topic, payload)
    wait_until(lambda: made.stats.get("malformed", 0) == len(garbage), what="garbage counted")
    wait_until(lambda: made.stats.get("rejected.validation-error", 0) == len(refused),
               what="refusals counted")
    publish(broker.port, "gridcore/devices/TILT-1/alarm", {"alarm": "tilt"})
    wait_until(lambda: made.stats.get("filed", 0) == 1, what="a good alarm after the garbage")
    assert made.stats.get("failed", 0) == 0


def _signed(client: TestClient, key: str, body: Any, *, secret: str | None = None,
            at: float | None = None) -> Any:
    raw = json.dumps(body).encode()
    stamp = str(int(at if at is not None else time.time()))
    signing = secret or signing_secret(
        client.app.state.settings.security.signing_key(),  # type: ignore[attr-defined]
        key.split("_")[1])
    return client.post("/ingest/alarms", content=raw, headers={
        "X-Api-Key": key, "X-Gridcore-Timestamp": stamp,
        "X-Gridcore-Signature": sign(signing, stamp, raw), "Content-Type": "application/json"})


def test_http_works_while_the_broker_is_down_and_mqtt_reconnects(
        client: TestClient, consumer: tuple[AlarmConsumer, Any], devices: Engine) -> None:
    made, broker = consumer
    broker.stop()
    wait_until(lambda: not made.connected.is_set(), what="the consumer to see the broker go")
    key = add_key(devices, "tilt gateway", "iot")
    answer = _signed(client, key, {"device": "TILT-1", "alarm": "tilt", "id": "h1"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["outcomes"][0]["outcome"] == "filed"
    broker.start()
    wait_until(lambda: made.connected.is_set(), timeout_s=20, what="the reconnection")
    assert made.connections == 2
    publish(broker.port, "gridcore/devices/TILT-1/alarm", {"alarm": "tilt", "id": "m1"})
    wait_until(lambda: made.stats.get("repeat", 0) == 1, what="an alarm after reconnecting")
    assert len(_cases(devices, "TILT-1")) == 1


def test_http_webhook_needs_its_key_and_signature(client: TestClient, devices: Engine) -> None:
    iot, video = add_key(devices, "gateway", "iot"), add_key(devices, "analytics", "video")
    open311 = add_key(devices, "app", "open311")
    body = {"device": "TILT-1", "alarm": "tilt", "source": "hotline", "id": "x1"}
    first = _signed(client, iot, body)
    assert first.status_code == 201, first.text
    case_id = first.json()["outcomes"][0]["case_id"]
    case = client.get(f"/cases/{case_id}", headers={"X-Role": "dispatcher"}).json()
    assert case["source"] == "iot" and case["reporter"] == "TILT-1"  # from the key, not body
    assert _signed(client, iot, body).json()["outcomes"][0]["outcome"] == "repeat"
    # the camera's alarm with the video key: source video
    cam = _signed(client, video, {"device": "CAM-1", "alarm": "parking"})
    assert cam.status_code == 201
    cam_case = client.get(f"/cases/{cam.json()['outcomes'][0]['case_id']}",
                          headers={"X-Role": "dispatcher"}).json()
    assert cam_case["source"] == "video"
    # refused: a video key for a sensor, an Open311 key, a wrong secret, a stale or missing
    # signature, a body changed after signing
    assert _signed(client, video, body).status_code == 403
    assert _signed(client, open311, body).status_code == 403
    assert _signed(client, iot, body, secret="0" * 64).status_code == 401
    assert _signed(client, iot, body, at=time.time() - 3600).status_code == 401
    raw = json.dumps(body).encode()
    assert client.post("/ingest/alarms", content=raw,
                       headers={"X-Api-Key": iot}).status_code == 401
    assert client.post("/ingest/alarms", content=raw).status_code == 401
    stamp = str(int(time.time()))
    secret = signing_secret(client.app.state.settings.security.signing_key(),  # type: ignore[attr-defined]
                            iot.split("_")[1])
    tampered = client.post("/ingest/alarms", content=raw.replace(b"x1", b"x2"), headers={
        "X-Api-Key": iot, "X-Gridcore-Timestamp": stamp,
        "X-Gridcore-Signature": sign(secret, stamp, raw)})
    assert tampered.status_code == 401
    # malformed and unknown: 422 naming the field; a batch answers per alarm
    bad = _signed(client, iot, {"device": "TILT-1", "alarm": "tilt", "value": "high"})
    assert bad.status_code == 422 and bad.json()["field"] == "value"
    assert _signed(client, iot, {"device": "NOPE", "alarm": "tilt"}).status_code == 422
    batch = _signed(client, iot, [{"device": "TILT-1", "alarm": "tilt", "state": "normal"},
                                  {"device": "NOPE", "alarm": "tilt"}])
    assert batch.status_code == 200
    first_result, second_result = batch.json()["results"]
    assert first_result["outcomes"][0]["outcome"] == "close_proposed"
    assert second_result["error"]["status"] == 422
    listed = {d["code"]: d for d in list_devices(devices)}
    assert listed["TILT-1"]["last_state"] == "normal" and len(listed["TILT-1"]["open_cases"]) == 1
    seen = client.get("/devices/TILT-1", headers={"X-Role": "dispatcher"}).json()
    assert seen["open_cases"][0]["repeats"] == 1
    assert client.get("/devices/NOPE", headers={"X-Role": "dispatcher"}).status_code == 404


def test_devices_cli_and_import(devices: Engine, cli_env: dict[str, str], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gridcore.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["devices", "add", "TILT-2", "--source", "iot", "--alarm",
                                 "tilt=P0101", "--lon", "24.945", "--lat", "60.171",
                                 "--kind", "manhole_tilt"], env=cli_env)
    assert result.exit_code == 0, result.output
    csv = tmp_path / "devices.csv"
    csv.write_text("code,source,alarms,lon,lat,trusted\n"
                   "CAM-9,video,parking=E0503,24.944,60.170,true\n"
                   "BAD-1,radio,tilt=P0101,24.944,60.170,false\n"
                   "BAD-2,iot,tilt=X9999,24.944,60.170,false\n"
                   "BAD-3,iot,tilt,24.944,60.170,false\n", encoding="utf-8")
    result = runner.invoke(app, ["devices", "import", str(csv)], env=cli_env)
    assert result.exit_code == 1
    assert "row 2 [source]" in result.output and "row 3 [category]" in result.output
    assert "row 4 [alarms]" in result.output
    assert "CAM-9" not in {d["code"] for d in list_devices(devices)}  # all or nothing
    result = runner.invoke(app, ["keys", "add", "gw", "--purpose", "video"], env=cli_env)
    assert result.exit_code == 0 and "signing secret" in result.output
    result = runner.invoke(app, ["devices", "list"], env=cli_env)
    assert "TILT-2\tiot\ttilt=P0101" in result.output
