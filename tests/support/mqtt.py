"""A real MQTT broker for the tests: Debian's mosquitto on a free loopback port, with a
configuration the test writes in its own directory (``layers.channels.broker``) — never the
system-wide broker. Skips with a message when mosquitto is not installed."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def mosquitto(directory: Path, port: int | None = None) -> Iterator[Any]:
    from gridcore.errors import ServiceUnavailable
    from layers.channels.broker import EmbeddedBroker, mosquitto_binary

    try:
        mosquitto_binary()
    except ServiceUnavailable as exc:  # scripts/install.sh installs mosquitto: a broken install
        pytest.fail(str(exc))
    broker = EmbeddedBroker(directory, port or free_port()).start()
    try:
        yield broker
    finally:
        broker.stop()


def publish(port: int, topic: str, payload: bytes | str | dict[str, Any]) -> None:
    """One message at QoS 1, acknowledged by the broker before returning."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        data = json.dumps(payload) if isinstance(payload, dict) else payload
        client.publish(topic, data, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def wait_until(condition: Callable[[], bool], timeout_s: float = 15.0,
               what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
