"""City health's running totals (layers/health/runs.py, long.py): a long window's additive
figures from two month boundaries equal a recount from the cases exactly, its p90 stays within
the stated bound and says so; writes of every kind (steps, a rolled-back write, an archive and
a restore of whole years) keep them equal; ``gridcore check --aggregates`` finds a corrupted
running total and ``--repair`` rebuilds it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Connection, Engine, text
from typer.testing import CliRunner

from demo.megacity.build import Options, build
from gridcore.calendar import WorkingCalendar
from gridcore.cli import app
from gridcore.health import HealthModel, Window
from layers.cases.archive import archive, restore
from layers.db.migrate import migrate
from layers.health import days, long, runs, scores
from layers.health.scores import Aggregates, aggregate
from tests.db.test_case_archive import _populate
from tests.db.test_health_days import _same
from tests.support.database import engine_on, scratch_database, serving

CAL = WorkingCalendar.chinese()
SMALL = Options(cases=6_000, parts=600, grids=300, communities=30, streets=5, districts=2,
                years=1.2, seed=11)


def test_p90_from_the_histogram_within_its_bound() -> None:
    rng = np.random.default_rng(3)
    rows = [rng.lognormal(6, 2, size=n) for n in (1, 2, 3, 10, 37, 500)]
    rows.append(np.array([0.0, 0.2, 0.7, 5000.0]))
    hist = np.zeros((len(rows), runs.BINS), dtype=np.int64)
    for i, r in enumerate(rows):
        np.add.at(hist[i], runs.bins_of(r), 1)
    got = runs.p90_minutes(hist)
    for g, r in zip(got, rows, strict=True):
        exact = float(np.percentile(r, 90))  # linear: as percentile_cont
        assert abs(g - exact) <= runs.BOUND * exact + 0.5 + 1e-9
    assert np.isnan(runs.p90_minutes(np.zeros((1, runs.BINS), dtype=np.int64)))[0]
    assert 0.047 < runs.BOUND < 0.048


def test_rows_summed_per_key_the_same_in_any_order() -> None:
    """long.add_rows: every key once in key order (a boundary's rows: a plain add), shuffled,
    repeated, or with grids no longer current (−1) — the same sums as a loop."""
    rng = np.random.default_rng(5)
    keys = 40
    for ki in (np.arange(keys), rng.permutation(keys), rng.integers(-1, keys, 300),
               np.r_[np.arange(keys - 1), -1], np.arange(1, keys)):
        vals = rng.integers(0, 60_000, (len(ki), 7)).astype(np.uint16)
        for sign in (1, -1):
            acc = np.full((keys, 7), 5, dtype=np.int32)
            long.add_rows(acc, ki.astype(np.int64), vals, sign)
            want = np.full((keys, 7), 5, dtype=np.int64)
            for k, v in zip(ki, vals, strict=True):
                if k >= 0:
                    want[k] += sign * v.astype(np.int64)
            assert np.array_equal(acc, want)


@pytest.fixture(scope="module")
def city(admin_url: str) -> Iterator[Engine]:
    with scratch_database(admin_url, f"gridcore_hruns_{uuid.uuid4().hex[:8]}") as url:
        engine = engine_on(url)
        migrate(engine)
        build(engine, SMALL, echo=lambda s: None)  # day aggregates and running totals
        yield engine
        engine.dispose()


def _windows(end: datetime, first: datetime) -> list[Window]:
    return [Window(end - timedelta(days=365), end),
            Window(end - timedelta(days=90, hours=3), end),
            Window(end - timedelta(days=200, hours=5), end - timedelta(days=100, hours=2)),
            Window(first - timedelta(days=3), end + timedelta(days=2)),
            Window(end - timedelta(days=77), end - timedelta(days=14))]


def _long_vs_recount(engine: Engine, window: Window, level: str) -> None:
    with engine.connect() as conn:
        fast = aggregate(conn, window, level, CAL, days=True)
        slow = aggregate(conn, window, level, CAL, days=False)
    assert fast.p90 == long.P90_SKETCH, "a long window reads the running totals"
    assert slow.p90 == long.P90_EXACT
    _same(fast, slow)


def test_long_windows_equal_the_recount(city: Engine) -> None:
    end = SMALL.end
    with city.connect() as conn:
        assert runs.layout(conn) is not None
        first = conn.execute(text("SELECT min(created_at) FROM case_record")).scalar_one()
        assert conn.execute(text("SELECT count(DISTINCT month) FROM health_run")
                            ).scalar_one() >= 12
    assert days.check(city, CAL).ok
    for window in _windows(end, first):
        for level in ("grid", "street"):
            _long_vs_recount(city, window, level)
    with city.connect() as conn:  # a month stays exact
        month = aggregate(conn, Window(end - timedelta(days=30), end), "grid", CAL, days=True)
        assert month.p90 == long.P90_EXACT
        year = aggregate(conn, _windows(end, first)[0], "grid", CAL, days=True)
    assert year.columns["cases"].sum() > 2000 and year.columns["closed"].sum() > 1000


def test_a_boundary_read_by_binary_copy_equals_the_rows(city: Engine) -> None:
    """The binary COPY a long window reads its boundaries with gives the stored rows as a plain
    query decodes them, grid by grid, at every boundary; and a grid code that is not 15 ASCII
    characters takes the plain query."""
    with city.connect() as conn:
        lay = runs.layout(conn)
        assert lay is not None
        months = [m for (m,) in conn.execute(text(
            "SELECT DISTINCT month FROM health_run ORDER BY 1"))]
        assert len(months) >= 12
        for month in months:
            codes, figs, hist, sums = runs.read_boundary(conn, lay, month)
            r_codes, r_figs, r_hist, r_sums = runs._boundary_rows(conn, lay, month)
            assert len(codes) == len(r_codes) > 0
            order, r_order = np.argsort(codes), np.argsort(r_codes)
            assert codes[order].tolist() == r_codes[r_order].tolist()
            assert np.array_equal(figs[order], r_figs[r_order])
            assert np.array_equal(hist[order], r_hist[r_order])
            assert np.allclose(sums[order], r_sums[r_order], rtol=0, atol=0)
    with city.connect() as conn, conn.begin() as tx:  # rolled back: the runs stay as built
        conn.execute(text("UPDATE health_run SET grid_code = left(grid_code, 14) "
                          "WHERE month = :m AND grid_code = (SELECT min(grid_code) "
                          "FROM health_run WHERE month = :m)"), {"m": months[-1]})
        codes = runs.read_boundary(conn, lay, months[-1])[0]
        assert min(len(c) for c in codes.tolist()) == 14
        tx.rollback()


def test_steps_and_a_rolled_back_write_keep_them_equal(city: Engine) -> None:
    end = SMALL.end
    with city.begin() as conn:  # old cases closed, others reopened: long-past days change
        conn.execute(text("""UPDATE case_record SET state = 'closed', closed_at = created_at +
            interval '3 days' WHERE id IN (SELECT id FROM case_record WHERE state = 'checked'
            ORDER BY id LIMIT 30)"""))
        conn.execute(text("""UPDATE case_record SET state = 'rework', closed_at = NULL
            WHERE id IN (SELECT id FROM case_record WHERE state = 'closed'
            ORDER BY id LIMIT 25)"""))
    window = Window(end - timedelta(days=400), end)
    _long_vs_recount(city, window, "grid")  # dirty days counted live, not from the runs
    assert days.refresh(city, CAL)
    _long_vs_recount(city, window, "grid")
    with city.connect() as conn, conn.begin() as tx:  # a write rolled back changes nothing
        conn.execute(text("UPDATE case_record SET state = 'voided' WHERE id IN "
                          "(SELECT id FROM case_record WHERE state = 'closed' LIMIT 40)"))
        tx.rollback()
    assert days.refresh(city, CAL)
    result = days.check(city, CAL)
    assert result.ok and result.run_check is not None and result.run_check.ok
    _long_vs_recount(city, window, "district")


def test_check_cli_finds_and_repairs_a_corrupted_running_total(
        city: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDCORE_DATABASE_URL", city.url.render_as_string(hide_password=False))
    runner = CliRunner()
    with city.begin() as conn:
        lay = runs.layout(conn)
        assert lay is not None
        grid, month, blob = conn.execute(text(
            "SELECT grid_code, month, v FROM health_run WHERE month = :m ORDER BY grid_code "
            "LIMIT 1"), {"m": lay.last_month}).one()
        figs, hist = lay.decode([bytes(blob)])
        figs[0, 0] += 1  # one case too many
        conn.execute(text("UPDATE health_run SET v = :v WHERE grid_code = :g AND month = :m"),
                     {"v": lay.encode(figs, hist)[0], "g": grid, "m": month})
    result = runner.invoke(app, ["check", "--aggregates", "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    differ = data["running_totals"]["differ"]
    assert len(differ) == 1 and differ[0]["grid_code"] == grid
    assert differ[0]["stored"]["cases"] == differ[0]["recount"]["cases"] + 1
    result = runner.invoke(app, ["check", "--aggregates", "--repair"])
    assert result.exit_code == 0, result.output
    assert "running totals" in result.output


def test_archive_and_restore_keep_them_equal(empty_db: Engine, tmp_path: Path) -> None:
    migrate(empty_db)
    _populate(empty_db, tmp_path)
    days.rebuild(empty_db, CAL)
    window = Window(datetime(2021, 1, 1, tzinfo=UTC), datetime.now(UTC))
    with empty_db.connect() as conn:
        before = aggregate(conn, window, "grid", CAL, days=True)
    assert before.p90 == long.P90_SKETCH and before.columns["cases"].sum() >= 6
    _long_vs_recount(empty_db, window, "grid")
    archive(empty_db, date(2023, 1, 1), tmp_path / "old.gcarchive", actor="cli:test")
    assert days.check(empty_db, CAL).ok
    _long_vs_recount(empty_db, window, "grid")
    restore(empty_db, tmp_path / "old.gcarchive", actor="cli:test")
    assert days.refresh(empty_db, CAL)
    assert days.check(empty_db, CAL).ok
    _long_vs_recount(empty_db, window, "grid")
    with empty_db.connect() as conn:
        after = aggregate(conn, window, "grid", CAL, days=True)
    _same(after, before)


def test_the_answer_says_how_the_p90_was_counted(city: Engine) -> None:
    end = SMALL.end
    year = f"{(end - timedelta(days=365)).isoformat()}/{end.isoformat()}"
    month = f"{(end - timedelta(days=30)).isoformat()}/{end.isoformat()}"
    with city.connect() as conn:
        grid = conn.execute(text("SELECT grid_code FROM case_record WHERE state = 'closed' "
                                 "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")).scalar_one()
    with serving(city) as client:
        body = client.get("/health/rankings", params={"window": year, "lang": "en"}).json()
        p90 = body["handling_p90"]
        assert p90["method"] == "log-binned histogram" and p90["relative_error"] == 0.0476
        assert "within 4.8 %" in p90["note"]
        zh = client.get("/health/rankings", params={"window": year, "lang": "zh-CN"}).json()
        assert "不超过 4.8%" in zh["handling_p90"]["note"]
        exact = client.get("/health/rankings", params={"window": month}).json()
        assert exact["handling_p90"]["method"] == "exact"
        one = client.get(f"/grids/{grid}/health", params={"window": year}).json()
        assert one["handling_p90"]["method"] == "log-binned histogram"
        assert one["aggregates"]["closed"] > 0
        shapes = client.get("/health/choropleth", params={"window": year}).json()
        assert shapes["handling_p90"]["method"] == "log-binned histogram"


def test_a_page_counts_both_windows_in_one_snapshot_reading_shared_boundaries_once(
        city: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rankings page's two windows (a year and the year before) are counted on two
    connections in the first one's snapshot: a write committed (and refreshed into the day
    rows and running totals) after the page began changes neither window, and both equal the
    recount from the cases as they stood; the boundary the two windows share is read once."""
    model = HealthModel.default()
    end = SMALL.end
    window = Window(end - timedelta(days=365), end)
    names = model.aggregate_names()

    def recount(w: Window) -> Aggregates:
        with city.connect() as conn:
            return aggregate(conn, w, "grid", CAL, model.repeat_days, names=names, days=False)

    assert days.refresh(city, CAL)
    before_now, before_previous = recount(window), recount(window.previous())
    assert before_previous.columns["closed"].sum() > 100

    export, read = scores._export, runs.read_boundary
    months: list[date] = []

    def export_then_write(conn: Connection) -> str | None:
        snapshot = export(conn)
        with city.begin() as other:  # closed cases of both windows voided, then refreshed
            other.execute(text(
                "UPDATE case_record SET state = 'voided' WHERE id IN (SELECT id FROM "
                "case_record WHERE state = 'closed' AND created_at >= :t0 ORDER BY id "
                "LIMIT 60)"), {"t0": window.previous().start + timedelta(days=20)})
        assert days.refresh(city, CAL)
        return snapshot

    def counted_read(conn: Connection, lay: runs.Layout, month: date) -> Any:
        months.append(month)
        return read(conn, lay, month)

    monkeypatch.setattr(scores, "_export", export_then_write)
    monkeypatch.setattr(runs, "read_boundary", counted_read)
    scores._CACHE.clear()
    now, previous = scores.score_with_previous(city, model, window, "grid", CAL)
    assert now.aggregates.p90 == previous.aggregates.p90 == long.P90_SKETCH
    _same(now.aggregates, before_now)
    _same(previous.aggregates, before_previous)
    assert len(months) == len(set(months)) == 3, months
    monkeypatch.undo()
    scores._CACHE.clear()
    after_now, after_previous = scores.score_with_previous(city, model, window, "grid", CAL)
    _same(after_now.aggregates, recount(window))
    _same(after_previous.aggregates, recount(window.previous()))
    assert after_previous.aggregates.columns["cases"].sum() < \
        before_previous.columns["cases"].sum()
