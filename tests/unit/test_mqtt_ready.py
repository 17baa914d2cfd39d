"""The alarm consumer reports itself connected only once the broker has acknowledged its
subscription: an alarm published between CONNACK and SUBACK would otherwise be lost while
the service already looked ready (a CI run lost one that way)."""

from __future__ import annotations

from typing import Any, cast

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from gridcore.settings import ChannelSettings
from layers.channels.alarms import AlarmService
from layers.channels.mqtt import AlarmConsumer


class _Client:
    def __init__(self) -> None:
        self.subscribed: list[tuple[str, int]] = []

    def subscribe(self, topic: str, qos: int = 0) -> None:
        self.subscribed.append((topic, qos))


def _consumer() -> AlarmConsumer:
    return AlarmConsumer(cast(AlarmService, object()), ChannelSettings(mqtt_client_id="unit"))


def test_connected_waits_for_the_subscription_acknowledgement() -> None:
    consumer, client = _consumer(), _Client()
    accepted = ReasonCode(PacketTypes.CONNACK, "Success")
    consumer._on_connect(cast(Any, client), None, None, accepted, None)
    assert client.subscribed == [(consumer.settings.mqtt_topic, 1)]
    assert not consumer.connected.is_set()  # subscribed, not yet acknowledged
    granted = ReasonCode(PacketTypes.SUBACK, "Granted QoS 1")
    consumer._on_subscribe(cast(Any, client), None, 1, [granted], None)
    assert consumer.connected.is_set()


def test_a_refused_subscription_is_not_ready() -> None:
    consumer, client = _consumer(), _Client()
    consumer._on_connect(cast(Any, client), None, None,
                         ReasonCode(PacketTypes.CONNACK, "Success"), None)
    refused = ReasonCode(PacketTypes.SUBACK, "Not authorized")
    consumer._on_subscribe(cast(Any, client), None, 1, [refused], None)
    assert not consumer.connected.is_set()
