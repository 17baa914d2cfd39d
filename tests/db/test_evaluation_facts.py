"""Per-case evaluation facts (case_eval_fact, layers/evaluation/store.py): kept current by the
writes, and always equal to a recount from the history — the rows a period reads from them
equal the rows the history recount gives, for many windows; ``gridcore check --evaluation``
finds a corrupted row and ``--repair`` counts them again."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridcore.calendar import WorkingCalendar
from gridcore.cli import app
from gridcore.evaluation import EvaluationModel, Period
from gridcore.settings import CaseSettings
from layers.cases.transitions import transition
from layers.evaluation import store
from layers.evaluation.evaluate import evaluate, explain
from layers.evaluation.facts import load_facts
from layers.grids.resolver import Resolver
from tests.support.evaluation_planting import plant_month
from tests.support.health_planting import TZ
from tests.support.snapshot import plant_once

MODEL, CAL = EvaluationModel.default(), WorkingCalendar.chinese()
PERIODS = ["2026-10", "2026-09", "2026-11", "2026-Q4", "2026-10-09/2026-10-14",
           "2026-10-13/2026-10-16", "2026-10-01/2026-10-10"]


@pytest.fixture
def month(db: Engine) -> dict[str, int]:
    ids = plant_once(db, "evaluation_month", lambda: plant_month(db))
    store.rebuild(db, CAL, MODEL)
    return ids


def _rows(engine: Engine, period: str, stored: bool, party: str = "",
          params: dict[str, Any] | None = None) -> list[tuple]:
    window = Period.parse(period).window(CAL.timezone)
    with engine.begin() as conn:
        load_facts(conn, window, CAL, MODEL, party, params, stored)
        # the working time used by the window's end and start is read only for a case open
        # at its end, a duration only for a step taken in the window (the stored path
        # computes them only then)
        for col, open_ in (("close_min", "closed"), ("handle_min", "handled"),
                           ("verify_min", "verified_in"), ("check_min", "checked_in"),
                           ("close_used_end", "open_at_end"), ("close_used_start", "open_at_end"),
                           ("handle_used_end", "unhandled_at_end AND dispatched"),
                           ("handle_used_start", "unhandled_at_end AND dispatched")):
            conn.execute(text(f"UPDATE eval_fact SET {col} = NULL WHERE NOT ({open_})"))
        rows = conn.execute(text("SELECT * FROM eval_fact ORDER BY id")).all()
    return [tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows]


def _dirty(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM case_eval_dirty")).scalar_one())


def test_stored_facts_read_as_the_history_recount(month: dict[str, int], db: Engine) -> None:
    assert store.check(db, CAL, MODEL).ok
    for period in PERIODS:
        stored, recount = _rows(db, period, True), _rows(db, period, False)
        assert stored == recount, period
    assert len(_rows(db, "2026-10", True)) == len(month)
    # one party's cohort, filtered on the facts, is that party's rows of the whole city
    d2 = _rows(db, "2026-10", True, "AND (f.department_code = :p OR "
               "f.send_back_by @> ARRAY[CAST(:p AS text)])", {"p": "D2"})
    assert {r[0] for r in d2} == {month["K3"], month["K5"], month["K8"]}


def test_evaluations_equal_with_and_without_the_facts(month: dict[str, int],
                                                      db: Engine) -> None:
    wanted = [("department", None), ("area", "community"), ("worker", None)]
    period = Period.parse("2026-10")
    from_facts = evaluate(db, MODEL, period, CAL, wanted)
    with db.begin() as conn:  # another basis: the facts cannot be read, the history is
        conn.execute(text("UPDATE case_eval_basis SET basis = 'other'"))
    with db.connect() as conn:
        assert not store.usable(conn, CAL, MODEL)
    store.AUTO_REBUILD_MAX, keep = 0, store.AUTO_REBUILD_MAX
    try:
        recount = evaluate(db, MODEL, period, CAL, wanted)
    finally:
        store.AUTO_REBUILD_MAX = keep
    for key, ev in from_facts.items():
        assert ev.counts == recount[key].counts and ev.counts_before == recount[key].counts_before
    one = explain(db, MODEL, period, CAL, "department", "D2")  # on the spot: a small city
    assert one.counts["D2"] == from_facts["department"].counts["D2"]
    with db.connect() as conn:
        assert store.usable(conn, CAL, MODEL)


def test_a_step_marks_its_case_and_the_next_evaluation_counts_it(month: dict[str, int],
                                                                 db: Engine) -> None:
    before = evaluate(db, MODEL, Period.parse("2026-10"), CAL, [("department", None)])
    assert before["department"].counts["D2"]["handled"] == 1
    settings = CaseSettings(calendar="chinese", city_timezone="Asia/Shanghai")
    at = datetime(2026, 10, 20, 10, tzinfo=TZ)
    for action in ("handle", "feed_back"):  # K5, left unhandled, is handled now
        transition(engine=db, settings=settings, resolver=Resolver(db), case_id=month["K5"],
                   action=action, actor="D2", role="department_handler", payload={}, now=at)
    assert _dirty(db) > 0
    with db.connect() as conn:
        assert not store.usable(conn, CAL, MODEL)
    after = evaluate(db, MODEL, Period.parse("2026-10"), CAL, [("department", None)])
    assert _dirty(db) == 0
    assert after["department"].counts["D2"]["handled"] == 2
    assert store.check(db, CAL, MODEL).ok
    for period in PERIODS:
        assert _rows(db, period, True) == _rows(db, period, False), period


def test_check_cli_finds_and_repairs_a_corrupted_fact(month: dict[str, int], db: Engine,
                                                      cli_env) -> None:  # noqa: ANN001
    runner = CliRunner()
    result = runner.invoke(app, ["check", "--evaluation"])
    assert result.exit_code == 0, result.output
    assert "ok: the evaluation facts equal a recount" in result.output
    with db.begin() as conn:
        conn.execute(text("UPDATE case_eval_fact SET handle_min = handle_min + 1 "
                          "WHERE case_id = :k"), {"k": month["K1"]})
        conn.execute(text("DELETE FROM case_eval_dirty"))  # as if nothing had been written
    result = runner.invoke(app, ["check", "--evaluation", "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["ok"] is False and data["missing"] == [month["K1"]] == data["extra"]
    result = runner.invoke(app, ["check", "--evaluation", "--repair"])
    assert result.exit_code == 0, result.output
    assert "counted again from the history" in result.output


def test_a_burst_of_marks_is_caught_up_in_batches(month: dict[str, int], db: Engine,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """More marks than a refresh takes (a sweep supervising thousands of cases): one refresh
    leaves the facts unreadable, the background job's catch_up counts batch after batch until
    they are current — and equal to the recount."""
    monkeypatch.setattr(store, "REFRESH_BATCH", 4)
    with db.begin() as conn:  # every case written three times over
        for _ in range(3):
            conn.execute(text("INSERT INTO case_eval_dirty (case_id) SELECT id FROM case_record"))
    marks = _dirty(db)
    assert marks > 3 * 4
    assert store.refresh(db, CAL, MODEL) is False and _dirty(db) == marks - 4
    assert store.catch_up(db, CAL, MODEL) is True and _dirty(db) == 0
    assert store.check(db, CAL, MODEL).ok
    with db.begin() as conn:  # a basis only --repair rebuilds on a big city: it stops at once
        conn.execute(text("UPDATE case_eval_basis SET basis = 'other'"))
        conn.execute(text("INSERT INTO case_eval_dirty (case_id) SELECT id FROM case_record"))
    monkeypatch.setattr(store, "AUTO_REBUILD_MAX", 0)
    assert store.catch_up(db, CAL, MODEL) is False


def test_a_write_racing_the_recount_leaves_the_marks_and_the_evaluation_counts(
        month: dict[str, int], db: Engine) -> None:
    """A case written after the refresh took its snapshot, before it stores the case's fact:
    the refresh gives way (the marks stay for the next one, no error), and an evaluation in
    the meantime counts from the history — it was a 503 "Database unavailable" (seen under the
    intake benchmark: the background job's traceback every few seconds)."""
    from sqlalchemy import event

    victim = next(iter(month.values()))
    with db.begin() as conn:
        conn.execute(text("INSERT INTO case_eval_dirty (case_id) VALUES (:id)"), {"id": victim})
    fired: list[bool] = []

    def race(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.startswith("DELETE FROM case_eval_fact WHERE case_id") and not fired:
            fired.append(True)
            with db.begin() as other:  # the case removed, as bench_intake's clean-up does
                other.execute(text("SET LOCAL session_replication_role = replica"))
                for table in ("case_photo", "case_history", "case_event"):
                    other.execute(text(f"DELETE FROM {table} WHERE case_id = :id"),
                                  {"id": victim})
                other.execute(text("SET LOCAL session_replication_role = origin"))
                other.execute(text("DELETE FROM case_record WHERE id = :id"), {"id": victim})

    event.listen(db, "before_cursor_execute", race)
    try:
        assert store.refresh(db, CAL, MODEL) is False
    finally:
        event.remove(db, "before_cursor_execute", race)
    assert fired and _dirty(db) >= 1  # the mark stays
    rows = evaluate(db, MODEL, Period.parse("2026-10"), CAL, [("department", None)])
    assert rows  # counted from the history, no error
