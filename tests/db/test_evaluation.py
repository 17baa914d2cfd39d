"""Evaluation (考评) on the planted month (tests/support/evaluation_planting.py), hand-counted.

Working minutes (08:30–12:00, 13:30–17:30; 1–7 Oct holiday; Sat 10 Oct a working day):
K9 D1 dispatched 30 Sep 16:20 → fed back 8 Oct 09:30: 70 + 60 = 130 ≤ 450 (1wd) on time
K1 D1 9 Oct 09:30 → 10 Oct 10:30: 150 + 240 + 120 = 510 > 450 late; whole case 9 Oct 09:25 →
   10 Oct 11:10: 395 + 160 = 555 > 540 (30m + 1wd + 1h) closed late
K2 D1 12 Oct 11:10 → 13 Oct 15:00: 50 + 240 + 210 + 90 = 590, parked 12 Oct 13:30 → 13 Oct
   13:30 = 450 → 140 on time (late without the parking); reworked; verified 2 h after the
   report (> 1wh) late
K3 hotline in G1 (W1 missed it), refused by D2, D1 11:00 → 14:00: 60 + 30 on time
K4 W1's report voided; K5 W2's, dispatched to D2 15 Oct 09:20, never handled: due 16 Oct
   09:20 → due and overdue; K6 W2's report not verified yet; K8 hotline in G3, D2 sends it
   back and gets it again (wrongful send-back), handled in 20 minutes.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from sqlalchemy import Engine, text

from gridcore.calendar import WorkingCalendar
from gridcore.errors import Conflict, Forbidden, ValidationError
from gridcore.evaluation import EvaluationModel, Period
from gridcore.evaluation.appeals import AppealRules
from gridcore.security.access import Principal, Role
from layers.evaluation import groups
from layers.evaluation.appeals import decide_appeal, file_appeal
from layers.evaluation.evaluate import evaluate, explain
from layers.evaluation.facts import load_facts
from layers.security.users import add_user
from tests.support.evaluation_planting import M1, PERIOD, plant_month
from tests.support.health_planting import C1, C2, G1, G3, TZ
from tests.support.snapshot import plant_once

MODEL, CAL, P = EvaluationModel.default(), WorkingCalendar.chinese(), Period.parse(PERIOD)
AFTER_MONTH = datetime(2026, 11, 3, 10, tzinfo=TZ)
D1 = Principal("d1-handler", Role.DEPARTMENT_HANDLER, department="D1")
MANAGER = Principal(M1, Role.MANAGER)


@pytest.fixture
def month(db: Engine) -> dict[str, int]:
    return plant_once(db, "evaluation_month", lambda: plant_month(db))


def _all(engine: Engine) -> dict:
    return evaluate(engine, MODEL, P, CAL, [("department", None), ("area", "community"),
                                            ("worker", None)])


# levels and channels (issue 24), hand-counted in tests/api/test_levels.py: set aside here
CHANNELS = {"response_rate", "resolution_rate", "satisfaction_rate", "whistle_on_time_rate",
            "assist_on_time_rate", "self_handled"}


def _values(ev, code: str) -> dict[str, float | None]:
    i = ev.keys.index(code)
    return {m.key: (None if ev.after.values[m.key][i] != ev.after.values[m.key][i]
                    else float(ev.after.values[m.key][i])) for m in ev.kind.measures
            if m.key not in CHANNELS}


def test_department_indicators_by_hand(month: dict[str, int], db: Engine) -> None:
    ev = _all(db)["department"]
    d1, d2 = _values(ev, "D1"), _values(ev, "D2")
    assert d1 == pytest.approx({
        "due": 4, "handled": 4, "handling_rate": 1.0, "on_time_rate": 3 / 4,
        "overdue_handled": 1, "overdue_unhandled": 0, "rework_rate": 1 / 4,
        "send_back_rate": 0.0, "wrongful_send_back_rate": 0.0, "closure_rate": 1.0})
    assert d2 == pytest.approx({
        "due": 2, "handled": 1, "handling_rate": 1 / 2, "on_time_rate": 1 / 2,
        "overdue_handled": 0, "overdue_unhandled": 1, "rework_rate": 0.0,
        "send_back_rate": 2 / 4, "wrongful_send_back_rate": 1 / 4, "closure_rate": 1 / 2})
    # score: Σ weight × (value − worst)/(target − worst), clipped, over Σ weights, × 100
    #   D1: handling 0.25·1 + on time 0.35·(0.75−0.5)/0.5 + rework 0.2·(0.25−0.3)/(0−0.3)
    #       + wrongful 0.1·1 + closure 0.1·1
    expected = 100 * (0.25 + 0.35 * 0.5 + 0.2 * (0.05 / 0.3) + 0.1 + 0.1)
    assert ev.after.total[ev.keys.index("D1")] == pytest.approx(expected)
    assert ev.names["D2"] == "市政设施"


def test_area_and_worker_indicators_by_hand(month: dict[str, int], db: Engine) -> None:
    result = _all(db)
    area, worker = result["area:community"], result["worker"]
    assert _values(area, C1) == pytest.approx({
        "worker_reports": 3, "registered": 3, "close_due": 4, "closure_rate": 1.0,
        "on_time_rate": 3 / 4, "rework_rate": 1 / 4, "supervision_rate": 2 / 3,
        "self_handling_rate": 0.0}, nan_ok=True)
    assert _values(area, C2)["closure_rate"] == pytest.approx(1 / 2)
    assert _values(area, C2)["on_time_rate"] == pytest.approx(1 / 2)
    assert "self_handling_rate" not in area.no_data  # recorded since issue 24
    assert _values(worker, "W1") == pytest.approx({
        "reports": 3, "valid_reports": 2, "valid_rate": 2 / 3, "verified": 3,
        "verify_on_time_rate": 2 / 3, "checked": 4, "check_on_time_rate": 1.0,
        "missed_rate": 1 / 3, "patrol_coverage": None}, nan_ok=True)
    assert _values(worker, "W2") == pytest.approx({
        "reports": 2, "valid_reports": 1, "valid_rate": 1.0, "verified": 2,
        "verify_on_time_rate": 1.0, "checked": 1, "check_on_time_rate": 1.0,
        "missed_rate": 1 / 2, "patrol_coverage": None}, nan_ok=True)
    assert worker.no_data["patrol_coverage"].startswith("no patrol data")


def test_one_party_explained_equals_its_ranking_row(month: dict[str, int], db: Engine) -> None:
    ranking = _all(db)
    for kind, code, level in (("department", "D1", None), ("department", "D2", None),
                              ("area", C1, "community"), ("worker", "W1", None)):
        one = explain(db, MODEL, P, CAL, kind, code, level)
        full = ranking[f"{kind}:{level}" if level else kind]
        assert one.counts[code] == full.counts[code], (kind, code)
        assert one.after.total[0] == pytest.approx(full.after.total[full.keys.index(code)])
    d1 = explain(db, MODEL, P, CAL, "department", "D1").members
    assert d1["handled_late"] == [month["K1"]] and d1["reworked"] == [month["K2"]]
    assert sorted(d1["handled_on_time"]) == sorted([month["K9"], month["K2"], month["K3"]])
    d2 = explain(db, MODEL, P, CAL, "department", "D2").members
    assert d2["sent_back"] == sorted([month["K3"], month["K8"]])
    assert d2["sent_back_wrongful"] == [month["K8"]]
    assert d2["overdue_unhandled"] == [month["K5"]]
    w1 = explain(db, MODEL, P, CAL, "worker", "W1").members
    assert w1["missed"] == [month["K3"]] and w1["verified_on_time"] == sorted(
        [month["K1"], month["K3"]])


def _audit(engine: Engine, action: str) -> list:
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT actor, target, details FROM audit_log WHERE action = :a ORDER BY seq"),
            {"a": action}))


def test_appeals_change_only_the_appealing_partys_figure(month: dict[str, int],
                                                         db: Engine) -> None:
    before = _all(db)
    rules = AppealRules()
    approved = file_appeal(db, MODEL, CAL, rules, D1, "department", "D1", month["K1"],
                           "overdue", P, "dispatched to us 20 hours late by mistake",
                           now=AFTER_MONTH)
    rejected = file_appeal(db, MODEL, CAL, rules, D1, "department", "D1", month["K2"],
                           "rework", P, "the check was wrong", now=AFTER_MONTH)
    assert approved["state"] == "filed" and approved["clock"] == "green"
    assert approved["decide_by"] > approved["filed_at"]
    decide_appeal(db, MANAGER, approved["id"], "approve", "the dispatch log confirms it")
    decide_appeal(db, MANAGER, rejected["id"], "reject", "the photo shows it dirty")
    after = _all(db)
    d1 = after["department"]
    # D1's on-time rate: K1 leaves the timeliness counts (3/3); its rework stays (rejected)
    assert _values(d1, "D1")["on_time_rate"] == pytest.approx(1.0)
    assert _values(d1, "D1")["overdue_handled"] == 0
    assert _values(d1, "D1")["rework_rate"] == pytest.approx(1 / 4)
    i = d1.keys.index("D1")
    assert d1.before.values["on_time_rate"][i] == pytest.approx(3 / 4)  # "before appeals"
    assert d1.after.total[i] > d1.before.total[i]
    # nobody else moves: D2, the community K1 lies in (still closed late for it), W1
    for key, codes in (("department", ["D2"]), ("area:community", [C1, C2]),
                       ("worker", ["W1", "W2"])):
        for code in codes:
            assert _values(after[key], code) == pytest.approx(_values(before[key], code),
                                                              nan_ok=True), (key, code)
    assert [r.target for r in _audit(db, "appeal.file")] == [
        f"appeal:{approved['id']}", f"appeal:{rejected['id']}"]
    assert [r.details["reason"] for r in _audit(db, "appeal.approve")] == [
        "the dispatch log confirms it"]
    assert len(_audit(db, "appeal.reject")) == 1


def _counted_plainly(db: Engine) -> dict[str, list[int]]:
    """Every department's counts (after appeals, then before) as one aggregate over all its
    rows — the definition count_both's per-part statement must equal."""
    conds = list(groups.CONDITIONS["department"].values())
    counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in
                       [*conds, *(groups._WAIVER.sub("false", c) for c in conds)])
    with db.begin() as conn:
        load_facts(conn, P.window(CAL.timezone), CAL, MODEL)
        w = P.window(CAL.timezone)
        return {r[0]: list(r[1:]) for r in conn.execute(text(
            f"{groups._ROWS['department']}\nSELECT key, {counts} FROM rows GROUP BY key"),
            {"appeals": True, "start": w.start, "end": w.end}) if r[0] is not None}


def _counted(db: Engine) -> dict[str, list[int]]:
    with db.begin() as conn:
        load_facts(conn, P.window(CAL.timezone), CAL, MODEL)
        w = P.window(CAL.timezone)
        after, before = groups.count_both(conn, "department",
                                          extra={"start": w.start, "end": w.end})
    return {k: [int(v) for v in [*after[k].values(), *before[k].values()]] for k in after}


def test_department_counts_part_by_part_equal_one_aggregate(month: dict[str, int],
                                                             db: Engine) -> None:
    """count_both counts a department's cases, send-backs and calls each on its own (and a
    month without an approved appeal once): the same figures as one aggregate over them."""
    assert _counted(db) == _counted_plainly(db)
    appeal = file_appeal(db, MODEL, CAL, AppealRules(), D1, "department", "D1", month["K1"],
                         "overdue", P, "dispatched to us late", now=AFTER_MONTH)
    decide_appeal(db, MANAGER, appeal["id"], "approve", "the dispatch log confirms it")
    waived = _counted(db)
    assert waived == _counted_plainly(db)
    assert waived["D1"][:len(groups.CONDITIONS["department"])] != \
        waived["D1"][len(groups.CONDITIONS["department"]):]


def test_appeals_are_refused_when_they_cannot_apply(month: dict[str, int], db: Engine) -> None:
    rules = AppealRules()
    with pytest.raises(ValidationError, match="carries no overdue penalty"):
        file_appeal(db, MODEL, CAL, rules, D1, "department", "D1", month["K3"], "overdue", P,
                    "on time anyway", now=AFTER_MONTH)
    with pytest.raises(Forbidden):  # a department appeals for itself only
        file_appeal(db, MODEL, CAL, rules, D1, "department", "D2", month["K5"], "overdue", P,
                    "not ours", now=AFTER_MONTH)
    with pytest.raises(Conflict, match="closed"):  # after the appeal window
        file_appeal(db, MODEL, CAL, rules, D1, "department", "D1", month["K1"], "overdue", P,
                    "late", now=datetime(2026, 12, 20, tzinfo=TZ))
    appeal = file_appeal(db, MODEL, CAL, rules, D1, "department", "D1", month["K1"],
                         "overdue", P, "late dispatch", now=AFTER_MONTH)
    with pytest.raises(Conflict):  # one appeal in force per case, party and penalty
        file_appeal(db, MODEL, CAL, rules, D1, "department", "D1", month["K1"], "overdue", P,
                    "again", now=AFTER_MONTH)
    with pytest.raises(Forbidden):  # the filer does not decide
        decide_appeal(db, Principal("d1-handler", Role.MANAGER), appeal["id"], "approve", "ok")
    with pytest.raises(ValidationError):
        decide_appeal(db, MANAGER, appeal["id"], "approve", " ")
    decide_appeal(db, MANAGER, appeal["id"], "reject", "no evidence")
    with pytest.raises(Conflict):
        decide_appeal(db, MANAGER, appeal["id"], "approve", "changed my mind")


def test_patrol_coverage_reads_the_phone_apps_shifts(month: dict[str, int], db: Engine) -> None:
    """The phone app's patrol shifts (issue 20) as evaluation reads them: through the accounts
    linked to workers of the register (``app_user.worker_code``)."""
    add_user(db, "w2-phone", "a-long-password-1", "grid_worker", areas=(G3,), worker_code="W2")
    with db.begin() as conn:  # a shift as the app stores it: a LineStringM, M = epoch seconds
        # along the middle of G3 (120.61–120.615 × 31.300–31.305), west to east
        conn.execute(text(
            "INSERT INTO patrol_shift (id, user_id, started_at, ended_at, points, track) "
            "SELECT CAST(:id AS uuid), id, '2026-10-20 09:00+08', '2026-10-20 09:40+08', 2, "
            "ST_GeomFromText('LINESTRING M(120.61 31.3025 1792458000, "
            "120.615 31.3025 1792460400)', 4326) FROM app_user WHERE username = 'w2-phone'"),
            {"id": str(uuid.uuid4())})
    worker = evaluate(db, MODEL, P, CAL, [("worker", None)])["worker"]
    w2 = _values(worker, "W2")["patrol_coverage"]
    # a 50 m wide band across a ~476 m × 556 m grid: about 9 %
    assert w2 is not None and 0.07 < w2 < 0.11
    # W1 has no account in the app: no data for W1 (not a 0 for a phone they do not have)
    assert _values(worker, "W1")["patrol_coverage"] is None
    assert "patrol_coverage" not in worker.no_data
    assert "no account" in explain(db, MODEL, P, CAL, "worker", "W1").no_data["patrol_coverage"]
    add_user(db, "w1-phone", "a-long-password-1", "grid_worker", areas=(G1,), worker_code="W1")
    worker = evaluate(db, MODEL, P, CAL, [("worker", None)])["worker"]
    assert _values(worker, "W1")["patrol_coverage"] == 0.0  # linked, never on duty
