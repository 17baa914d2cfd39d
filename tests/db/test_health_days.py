"""City health's day aggregates (layers/health/days.py) always equal a recomputation from the
cases (cases.sql): on the hand-computed planted history, on a small synthetic megacity for many
windows and levels, with grid days dirty after writes and after their refresh; and
``gridcore check --aggregates`` finds a corrupted day row and repairs it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from demo.megacity.build import Options, build
from gridcore.calendar import WorkingCalendar
from gridcore.cli import app
from gridcore.health import Window
from gridcore.settings import CaseSettings
from gridcore.supervision import AutoSupervision
from layers.cases.supervision import sweep
from layers.grids.resolver import Resolver
from layers.health import days, short
from layers.health.scores import Aggregates, aggregate
from tests.support.database import engine_on, scratch_database
from tests.support.health_planting import G1, G2, PREVIOUS, WINDOW, plant_city, plant_history
from tests.support.snapshot import plant_once

CAL = WorkingCalendar.chinese()
NOW = datetime(2026, 11, 1, tzinfo=UTC)
SMALL = Options(cases=5_000, parts=600, grids=300, communities=30, streets=5, districts=2,
                years=0.4, seed=5)


def _same(a: Aggregates, b: Aggregates) -> None:
    """Every aggregate equal; the p90 within its stated bound when it came from the running
    totals' histograms (a long window: layers/health/long.py)."""
    assert a.keys == b.keys
    assert set(a.columns) == set(b.columns)
    for name, col in a.columns.items():
        if name == "handling_p90_h" and a.p90["method"] != "exact":
            bound = a.p90["relative_error"] + 1e-9
            np.testing.assert_array_equal(np.isnan(col), np.isnan(b.columns[name]))
            np.testing.assert_allclose(col, b.columns[name], rtol=bound,
                                       atol=a.p90["absolute_error_min"] / 60, equal_nan=True)
            continue
        np.testing.assert_allclose(col, b.columns[name], rtol=1e-9, atol=1e-9, equal_nan=True,
                                   err_msg=f"{name} differs")


def _both(engine: Engine, window: Window, level: str) -> tuple[Aggregates, Aggregates]:
    with engine.connect() as conn:
        return (aggregate(conn, window, level, CAL, days=True),
                aggregate(conn, window, level, CAL, days=False))


def _dirty(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM health_dirty")).scalar_one())


@pytest.fixture
def planted(db: Engine) -> Engine:
    plant_once(db, "health", lambda: (plant_city(db), plant_history(db)))
    return db


def test_planted_history_from_days_equals_the_recount(planted: Engine) -> None:
    assert days.rebuild(planted, CAL) > 0
    windows = [Window.parse(w, NOW) for w in (WINDOW, PREVIOUS, "2026-09-21T10:30/2026-10-12T08:00",
                                              "2026-09-24T08:00/2026-09-24T20:00", "60d")]
    for window in windows:
        for level in ("grid", "community"):
            from_days, recount = _both(planted, window, level)
            _same(from_days, recount)
    from_days, _ = _both(planted, Window.parse(WINDOW, NOW), "grid")
    assert from_days.row(G1)["closed"] == 3 and from_days.row(G1)["repeat"] == 1
    assert from_days.row(G1)["handling_p90_h"] == pytest.approx(8.4)
    assert days.check(planted, CAL).ok


def test_writes_mark_days_dirty_counted_live_until_refreshed(planted: Engine) -> None:
    days.rebuild(planted, CAL)
    assert _dirty(planted) == 0
    window = Window.parse(WINDOW, NOW)
    with planted.begin() as conn:
        # a settled case reopened by hand and another voided: both grid days turn dirty
        conn.execute(text("UPDATE case_record SET state = 'rework', closed_at = NULL "
                          "WHERE idempotency_key = 'C'"))
        conn.execute(text("UPDATE case_record SET state = 'voided' WHERE idempotency_key = 'A'"))
    assert _dirty(planted) == 2
    from_days, recount = _both(planted, window, "grid")
    _same(from_days, recount)
    assert from_days.row(G1)["closed"] == 1  # only B is closed and counted now
    assert days.refresh(planted, CAL)
    assert _dirty(planted) == 0
    _same(*_both(planted, window, "grid"))
    assert days.check(planted, CAL).ok


def test_sweep_and_bookkeeping_updates_mark_no_days(planted: Engine) -> None:
    """预警 / 超期 / 督办 and an assignee change touch no health fact: no grid day turns dirty
    (the first sweep of a bulk-loaded 3 M megacity marked 17,000), and the days still equal
    the recount."""
    days.rebuild(planted, CAL)
    settings = CaseSettings(calendar="chinese", city_timezone="Asia/Shanghai")
    result = sweep(planted, settings, Resolver(planted), AutoSupervision(),
                   now=NOW + timedelta(days=30))
    assert result.supervised and result.overdue  # D, E, G, H are long past their limits
    with planted.begin() as conn:
        conn.execute(text("UPDATE case_record SET assignee = 'someone', version = version + 1, "
                          "updated_at = now() WHERE idempotency_key IN ('A', 'D')"))
    assert _dirty(planted) == 0
    _same(*_both(planted, Window.parse(WINDOW, NOW), "grid"))
    assert days.check(planted, CAL).ok


@pytest.mark.parametrize("change", [
    "state = 'rework', closed_at = NULL", "closed_at = closed_at + interval '1 minute'",
    "deadline_at = deadline_at + interval '1 hour'", "parked_since = created_at",
    "parked_intervals = parked_intervals || '[[\"2026-09-22T00:00:00+00:00\", "
    "\"2026-09-22T01:00:00+00:00\"]]'::jsonb", "h3 = 'h-z'", "category_key = 'E0103'",
    "grid_code = '" + G2 + "'"])
def test_an_update_of_a_counted_column_marks_its_days(planted: Engine, change: str) -> None:
    days.rebuild(planted, CAL)
    with planted.begin() as conn:
        conn.execute(text(f"UPDATE case_record SET {change} WHERE idempotency_key = 'A'"))
    assert _dirty(planted) >= 1
    _same(*_both(planted, Window.parse(WINDOW, NOW), "grid"))


def test_stale_basis_falls_back_to_the_cases(planted: Engine) -> None:
    days.rebuild(planted, CAL)
    with planted.connect() as conn:
        assert days.usable(conn, CAL, 30)
        assert not days.usable(conn, CAL, 14)  # another repeat reach
        assert not days.usable(conn, WorkingCalendar.weekdays("Asia/Shanghai"), 30)


def test_check_cli_finds_and_repairs_a_corrupted_day(planted: Engine, cli_env) -> None:  # noqa: ANN001
    runner = CliRunner()
    days.rebuild(planted, CAL)
    result = runner.invoke(app, ["check", "--aggregates"])
    assert result.exit_code == 0, result.output
    assert "ok: the day aggregates equal a recount" in result.output
    with planted.begin() as conn:
        conn.execute(text("UPDATE health_day SET cases = cases + 1 WHERE ctid = "
                          "(SELECT ctid FROM health_day LIMIT 1)"))
    result = runner.invoke(app, ["check", "--aggregates", "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["ok"] is False and len(data["missing"]) == 1 and len(data["extra"]) == 1
    assert data["extra"][0]["cases"] == data["missing"][0]["cases"] + 1
    result = runner.invoke(app, ["check", "--aggregates", "--repair"])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def megacity(admin_url: str) -> Iterator[Engine]:
    from layers.db.migrate import migrate

    with scratch_database(admin_url, f"gridcore_hdays_{uuid.uuid4().hex[:8]}") as url:
        engine = engine_on(url)
        migrate(engine)
        build(engine, SMALL, echo=lambda s: None)  # rebuilds the day aggregates at the end
        yield engine
        engine.dispose()


def test_megacity_windows_from_days_equal_the_recount(megacity: Engine) -> None:
    end = SMALL.end
    with megacity.connect() as conn:
        assert days.usable(conn, CAL, 30)
        first = conn.execute(text("SELECT min(created_at) FROM case_record")).scalar_one()
    assert days.check(megacity, CAL).ok
    windows = [Window(end - timedelta(days=30), end),
               Window(end - timedelta(days=61, hours=5), end - timedelta(days=31, hours=2)),
               Window(first, end), Window(end - timedelta(days=7, minutes=13), end + timedelta(
                   days=3)), Window(end - timedelta(hours=9), end - timedelta(hours=1))]
    for window in windows:
        for level in ("grid", "street", "district"):
            _same(*_both(megacity, window, level))
    with megacity.connect() as conn:  # two grid-code shards on two connections
        _same(aggregate(conn, windows[2], "grid", CAL, shards=2, days=True),
              aggregate(conn, windows[2], "grid", CAL, days=False))
    month, _ = _both(megacity, windows[0], "grid")
    assert month.columns["cases"].sum() > 100 and month.columns["closed"].sum() > 0
    with megacity.connect() as conn:  # the month is read from stored days, not recounted
        assert conn.execute(text("SELECT sum(cases) FROM health_day WHERE day >= :d"),
                            {"d": (end - timedelta(days=29)).date()}).scalar_one() > 50
    with megacity.connect() as conn:
        one = conn.execute(text("SELECT left(grid_code, 12) FROM case_record WHERE state = "
                                "'closed' LIMIT 1")).scalar_one()
        _same(aggregate(conn, windows[2], "community", CAL, code=one, days=True),
              aggregate(conn, windows[2], "community", CAL, code=one, days=False))


def test_megacity_short_window_reads_its_day_rows_by_copy_as_the_arrays_do(
        megacity: Engine) -> None:
    """A short window's stored day rows (layers/health/short.py) by binary COPY equal the
    same rows read as arrays, row for row, families and handling times included; and the
    window's aggregates are the same either way (the recount: the tests above)."""
    end = SMALL.end
    window = Window(end - timedelta(days=30), end)
    with megacity.connect() as conn:
        keys = [k for (k,) in conn.execute(text(
            "SELECT code FROM unit_grid WHERE gen_to IS NULL ORDER BY code"))]
        families = sorted({f"cases_{k[:3]}" for (k,) in conn.execute(text(
            "SELECT key FROM category"))})[1:]  # one family not asked for: position −1
        params = {"n": 15, "tz": CAL.timezone, **days.window_params(window, CAL)}
        by_copy = short.stored_rows(conn, params, keys[1:], families)  # a grid not current
        as_arrays = short.stored_rows(conn, params, keys[1:], families, copy=False)
    assert len(by_copy.ki) == len(as_arrays.ki) > 100
    assert (by_copy.ki == -1).any() and (by_copy.fam == -1).any()
    assert (~np.isnan(by_copy.minutes)).sum() > 50

    def rows(st: short.Stored) -> list[tuple]:
        return sorted(zip(st.ki.tolist(), st.fam.tolist(), map(tuple, st.figs.tolist()),
                          np.nan_to_num(st.minutes, nan=-1.0).tolist(), strict=True))

    assert rows(by_copy) == rows(as_arrays)
    with megacity.connect() as conn:
        month = aggregate(conn, window, "grid", CAL, days=True)
        # arrays holding a NULL, an empty one: the COPY's arrays are unnested as the query does
        # (rolled back)
        conn.execute(text("""UPDATE health_day d SET work_min = v.w FROM (
            SELECT ctid, CASE row_number() OVER ()
                         WHEN 1 THEN ARRAY[NULL, 5.5, NULL, 7.25::float8]
                         WHEN 2 THEN ARRAY[NULL::float8] ELSE ARRAY[1.0, 2.0] END AS w
            FROM health_day WHERE day >= :d AND closed > 0 LIMIT 3) v
            WHERE d.ctid = v.ctid"""), {"d": params["first_day"]})
        conn.execute(text("UPDATE health_day SET work_min = '{}' WHERE ctid = (SELECT ctid FROM "
                          "health_day WHERE day >= :d AND closed > 0 AND work_min <> '{}' "
                          "AND NOT (work_min @> ARRAY[7.25::float8]) LIMIT 1)"),
                     {"d": params["first_day"]})
        by_copy = short.stored_rows(conn, params, keys, families)
        as_arrays = short.stored_rows(conn, params, keys, families, copy=False)
        conn.rollback()
    assert rows(by_copy) == rows(as_arrays)
    assert {5.5, 7.25} <= set(by_copy.minutes.tolist())
    assert month.columns["cases"].sum() > 100


def test_megacity_steps_after_the_load_keep_the_days_equal(megacity: Engine) -> None:
    end = SMALL.end
    with megacity.begin() as conn:
        # close a few open cases, reopen a few closed ones: as steps would (state, closed_at)
        conn.execute(text("""UPDATE case_record SET state = 'closed', closed_at = created_at +
            interval '3 days' WHERE id IN (SELECT id FROM case_record WHERE state = 'checked'
            ORDER BY id LIMIT 20)"""))
        conn.execute(text("""UPDATE case_record SET state = 'rework', closed_at = NULL
            WHERE id IN (SELECT id FROM case_record WHERE state = 'closed'
            ORDER BY id DESC LIMIT 20)"""))
    assert _dirty(megacity) > 0
    window = Window(end - timedelta(days=90), end)
    _same(*_both(megacity, window, "grid"))
    assert days.refresh(megacity, CAL)
    assert _dirty(megacity) == 0
    _same(*_both(megacity, window, "grid"))
    assert days.check(megacity, CAL).ok


def test_megacity_open_cases_are_read_from_their_facts_kept_equal_to_the_recount(
        megacity: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The open cases' facts (health_open: first 立案 and 返工, repeat) hold every open case
    once, equal a recount, follow a step (counted live while their grid day is dirty, counted
    again by the refresh), are what a window reads (a wrong fact changes the window), and a
    wrong one is found by ``gridcore check --aggregates`` and repaired."""
    end = SMALL.end
    month = Window(end - timedelta(days=30), end)
    assert days.refresh(megacity, CAL)
    with megacity.connect() as conn:
        open_cases = conn.execute(text(
            "SELECT count(*) FROM case_record WHERE grid_code IS NOT NULL "
            "AND state NOT IN ('closed', 'voided', 'merged')")).scalar_one()
        stored = conn.execute(text("SELECT count(*), count(reg_at), count(*) FILTER "
                                   "(WHERE repeat) FROM health_open")).one()
        case = conn.execute(text(
            "SELECT c.id FROM health_open o JOIN case_record c ON c.id = o.case_id "
            "WHERE o.created_at >= :t AND o.reg_at IS NOT NULL AND o.rework_at IS NULL "
            "ORDER BY o.case_id LIMIT 1"), {"t": month.start + timedelta(days=2)}).scalar_one()
    assert open_cases > 20 and stored[0] == open_cases and 0 < stored[1] <= stored[0]
    result = days.check(megacity, CAL)
    assert result.ok and result.open_rows == open_cases
    # a rework of an open case (history and the case written, as a step does)
    with megacity.begin() as conn:
        conn.execute(text(
            "INSERT INTO case_history (case_id, at, actor, role, action, from_state, to_state) "
            "SELECT id, created_at + interval '1 hour', 't', 'supervisor', 'rework', state, "
            "'rework' FROM case_record WHERE id = :id"), {"id": case})
        conn.execute(text("UPDATE case_record SET state = 'rework' WHERE id = :id"),
                     {"id": case})
    assert _dirty(megacity) > 0
    before, recount = _both(megacity, month, "grid")
    _same(before, recount)  # the grid day is dirty: its open cases counted live
    assert days.refresh(megacity, CAL) and _dirty(megacity) == 0
    with megacity.connect() as conn:
        assert conn.execute(text("SELECT rework_at IS NOT NULL FROM health_open "
                                 "WHERE case_id = :id"), {"id": case}).scalar_one()
    _same(*_both(megacity, month, "grid"))
    assert days.check(megacity, CAL).ok
    # a wrong fact: the window reads it, and the check finds it
    with megacity.begin() as conn:
        conn.execute(text("UPDATE health_open SET reg_at = NULL WHERE case_id = :id"),
                     {"id": case})
    wrong, recount = _both(megacity, month, "grid")
    assert wrong.columns["registered"].sum() == recount.columns["registered"].sum() - 1
    assert wrong.columns["reworked"].sum() == recount.columns["reworked"].sum() - 1
    monkeypatch.setenv("GRIDCORE_DATABASE_URL",
                       megacity.url.render_as_string(hide_password=False))
    runner = CliRunner()
    out = runner.invoke(app, ["check", "--aggregates", "--json"])
    assert out.exit_code == 1, out.output
    data = json.loads(out.output)["open_facts"]
    assert [r["case_id"] for r in data["missing"]] == [case] == \
        [r["case_id"] for r in data["extra"]]
    assert data["extra"][0]["reg_at"] is None and data["missing"][0]["reg_at"] is not None
    out = runner.invoke(app, ["check", "--aggregates", "--repair"])
    assert out.exit_code == 0, out.output
    _same(*_both(megacity, month, "grid"))
