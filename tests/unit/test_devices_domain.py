"""Machine discovery's rules: alarms read (every bad field named), decisions (new case,
repeat, close proposal, automatic close, nothing), idempotency keys, signed bodies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridcore.devices import (
    Device,
    Outcome,
    case_key,
    check_device,
    closes_without_check,
    decide,
    parse_alarm,
    parse_alarm_map,
)
from gridcore.errors import Unauthenticated, ValidationError
from gridcore.security.signatures import sign, signing_secret, verify

TILT = Device("T1", "iot", 24.94, 60.17, {"tilt": "P0101", "open": "P0101", "flood": "E0404"})


def test_alarms_are_read_and_bad_fields_named() -> None:
    alarm = parse_alarm({"alarm": "tilt", "at": "2026-12-07T09:00:00+08:00", "id": "m1",
                         "value": 31.5, "source": "citizen"}, device="T1")
    assert (alarm.device, alarm.kind, alarm.state, alarm.value) == ("T1", "tilt", "alarm", 31.5)
    assert alarm.at == datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    assert parse_alarm({"device": "T1", "alarm": "normal"}).normal
    assert parse_alarm({"device": "T1", "alarm": "tilt", "state": "normal"}).kind == "tilt"
    for body, field in [({"alarm": "tilt"}, "device"), ([], "body"),
                        ({"device": "T1"}, "alarm"), ({"device": "T1", "alarm": "x",
                                                       "state": "maybe"}, "state"),
                        ({"device": "T1", "alarm": "x", "at": "2026-12-07T09:00"}, "at"),
                        ({"device": "T1", "alarm": "x", "value": float("nan")}, "value"),
                        ({"device": "T1", "alarm": "x", "value": True}, "value"),
                        ({"device": "T2", "alarm": "x"}, "device")]:
        with pytest.raises(ValidationError) as err:
            parse_alarm(body, device="T1" if field == "device" and body != {"alarm": "tilt"}
                        else None)
        assert err.value.details["field"] == field, body


def test_decisions() -> None:
    alarm = parse_alarm({"device": "T1", "alarm": "tilt"})
    assert decide(TILT, alarm, {})[0].outcome is Outcome.FILED
    assert decide(TILT, alarm, {"P0101": 7})[0] == decide(TILT, alarm, {"P0101": 7})[0]
    assert decide(TILT, alarm, {"P0101": 7})[0].outcome is Outcome.REPEAT
    normal = parse_alarm({"device": "T1", "alarm": "normal"})
    both = decide(TILT, normal, {"P0101": 7, "E0404": 8})
    assert [(d.outcome, d.case_id) for d in both] == [(Outcome.CLOSED, 8), (Outcome.PROPOSED, 7)]
    one = decide(TILT, parse_alarm({"device": "T1", "alarm": "flood", "state": "normal"}),
                 {"P0101": 7, "E0404": 8})
    assert [(d.outcome, d.case_id) for d in one] == [(Outcome.CLOSED, 8)]
    assert decide(TILT, normal, {})[0].outcome is Outcome.IGNORED
    with pytest.raises(ValidationError):
        decide(TILT, parse_alarm({"device": "T1", "alarm": "smoke"}), {})
    with pytest.raises(ValidationError):
        decide(Device("T1", "iot", 0, 0, {"tilt": "P0101"}, active=False), alarm, {})
    assert closes_without_check("E0404") and not closes_without_check("P0101")
    assert not closes_without_check("E0101")  # unlisted: a person checks


def test_case_keys_make_redeliveries_the_same_report() -> None:
    alarm = parse_alarm({"device": "T1", "alarm": "tilt", "id": "m1"})
    assert case_key("T1", alarm, "P0101") == "alarm:T1:m1"
    timed = parse_alarm({"device": "T1", "alarm": "tilt", "at": "2026-12-07T09:00:00+08:00"})
    assert case_key("T1", timed, "P0101") == "alarm:T1:P0101:2026-12-07T09:00:00+08:00"


def test_registry_rules() -> None:
    assert parse_alarm_map("tilt=P0101; open=P0101") == {"tilt": "P0101", "open": "P0101"}
    with pytest.raises(ValidationError):
        parse_alarm_map("tilt")
    check_device(TILT)
    for bad, field in [(Device("X", "radio", 0, 0, {"a": "P0101"}), "source"),
                       (Device("X", "iot", float("nan"), 0, {"a": "P0101"}), "lon"),
                       (Device("X", "iot", 0, 0, {}), "alarms"),
                       (Device("X", "iot", 0, 0, {"normal": "P0101"}), "alarms"),
                       (Device("X", "iot", 0, 0, {"a": "Z0000"}), "category")]:
        with pytest.raises(ValidationError) as err:
            check_device(bad)
        assert err.value.details["field"] == field


def test_signatures() -> None:
    secret = signing_secret("service-secret", "abc123")
    assert secret != signing_secret("service-secret", "abc124")
    assert secret != signing_secret("other-secret", "abc123")
    body = b'{"device": "T1", "alarm": "tilt"}'
    verify(secret, "1000", sign(secret, "1000", body), body, 1010, 300)
    for ts, sig, data, now in [("1000", sign(secret, "1000", body), body + b" ", 1010),
                               ("1000", sign(secret, "1000", body), body, 2000),
                               ("1000", sign("x", "1000", body), body, 1010),
                               (None, sign(secret, "1000", body), body, 1010),
                               ("soon", sign(secret, "soon", body), body, 1010)]:
        with pytest.raises(Unauthenticated):
            verify(secret, ts, sig, data, now, 300)
