"""``gridcore ingest mqtt``: alarms from an MQTT broker into cases (paho-mqtt).

Devices (or their gateways) publish to ``gridcore/devices/<code>/alarm`` (the topic filter is
``GRIDCORE_MQTT_TOPIC``; the device code is the topic level after ``devices``) a JSON object:
``{"alarm": "tilt", "state": "alarm" | "normal", "at": "…+08:00", "id": "…", "value": 35}``. The
broker authenticates the publisher; the consumer takes the device's registered source (``iot``
/ ``video``), never one named in the message.

Robust by design:

* **the broker goes away** — paho reconnects by itself with back-off (1 s doubling up to
  ``GRIDCORE_MQTT_BACKOFF_MAX_S``), the first connection included; the session is persistent
  (``clean_start`` false, QoS 1), so the broker keeps what arrived for us meanwhile;
* **a message is garbage** (not JSON, not an object, an unknown device or alarm kind) — it is
  counted under ``malformed`` / ``rejected.<kind>`` and logged with its topic, and the consumer
  goes on; it never stops for a message;
* **the database hiccups** — the message is tried again a few times, then counted ``failed``
  and logged with its payload.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gridcore.devices import parse_alarm
from gridcore.errors import GridcoreError
from gridcore.settings import ChannelSettings
from layers.channels.alarms import AlarmService

log = logging.getLogger(__name__)
RETRIES = 3
MAX_PAYLOAD = 64 * 1024


def device_of_topic(topic: str) -> str | None:
    """``gridcore/devices/TILT-1/alarm`` → ``TILT-1`` (the level after ``devices``)."""
    levels = topic.split("/")
    for i, level in enumerate(levels[:-1]):
        if level == "devices" and levels[i + 1]:
            return levels[i + 1]
    return None


class AlarmConsumer:
    """Subscribes to the alarm topic and hands every message to ``service``."""

    def __init__(self, service: AlarmService, settings: ChannelSettings) -> None:
        self.service = service
        self.settings = settings
        self.connected = threading.Event()
        self.connections = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=settings.mqtt_client_id,
                                  protocol=mqtt.MQTTv5)
        self.client.reconnect_delay_set(1, max(1, int(settings.mqtt_backoff_max_s)))
        if settings.mqtt_username:
            password = (settings.mqtt_password.get_secret_value()
                        if settings.mqtt_password else None)
            self.client.username_pw_set(settings.mqtt_username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    @property
    def stats(self) -> dict[str, int]:
        return self.service.snapshot()

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        """Connect (retrying in the background until the broker is there) and consume on
        paho's own thread."""
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port,
                                  keepalive=30, clean_start=False)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def run_forever(self, stats_every_s: float = 60.0) -> None:
        """Consume until interrupted (``gridcore ingest mqtt``), logging the counters."""
        self.start()
        try:
            while True:
                time.sleep(stats_every_s)
                log.info("mqtt alarms: %s", json.dumps(self.stats, sort_keys=True))
        finally:
            self.stop()

    # -- callbacks (paho's network thread) -------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt: the broker refused the connection: %s", reason)
            return
        self.connections += 1
        client.subscribe(self.settings.mqtt_topic, qos=1)
        log.info("mqtt: connected to %s:%s, subscribing to %s", self.settings.mqtt_host,
                 self.settings.mqtt_port, self.settings.mqtt_topic)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                      reason_codes: list[Any], properties: Any) -> None:
        # "connected" means "alarms published from now on reach us": only the broker's
        # SUBACK says so. Set on CONNACK, a message published in between was lost (seen in CI).
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            log.warning("mqtt: the broker refused the subscription to %s: %s",
                        self.settings.mqtt_topic, refused[0])
            return
        self.connected.set()
        log.info("mqtt: subscribed to %s", self.settings.mqtt_topic)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        self.service.count("disconnects")
        log.warning("mqtt: disconnected (%s); reconnecting with back-off", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
                    ) -> None:
        try:
            self.handle(message.topic, bytes(message.payload))
        except Exception:  # noqa: BLE001 — a consumer never dies of one message
            self.service.count("failed")
            log.exception("mqtt: message on %s could not be handled", message.topic)

    def handle(self, topic: str, payload: bytes) -> list[dict[str, Any]] | None:
        """One message: parsed, then handed to the service (retried on database errors).
        None when it was refused (counted and logged)."""
        device = device_of_topic(topic)
        try:
            if len(payload) > MAX_PAYLOAD:
                raise GridcoreError(f"payload of {len(payload)} bytes (limit {MAX_PAYLOAD})")
            body = json.loads(payload.decode("utf-8"))
            alarm = parse_alarm(body, device)
        except (ValueError, UnicodeDecodeError, GridcoreError) as exc:
            self.service.count("malformed")
            log.warning("mqtt: malformed message on %s: %s; payload %r", topic, exc,
                        payload[:200])
            return None
        for attempt in range(1, RETRIES + 1):
            try:
                return self.service.receive(alarm)
            except GridcoreError as exc:  # counted by the service as rejected.<kind>
                log.warning("mqtt: alarm of %s refused: %s", alarm.device, exc)
                return None
            except Exception as exc:  # noqa: BLE001 — the database: try again, then give up
                if attempt == RETRIES:
                    raise
                log.warning("mqtt: alarm of %s failed (%s); retry %d", alarm.device, exc,
                            attempt)
                time.sleep(0.5 * attempt)
        return None
