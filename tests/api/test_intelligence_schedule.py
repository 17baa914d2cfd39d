"""Scheduled learning in ``serve`` and the shared similar-case index (issue 22): one process
learns when it is due, a worse model is stored but never activated, everything is audited; the
published index is mapped read-only by every process, answers as the in-memory one does and
picks up cases stored after it."""

from __future__ import annotations

import mmap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from gridcore.cli import app
from gridcore.security.access import Scope
from gridcore.settings import IntelligenceSettings, Settings
from layers.intelligence import similar_files
from layers.intelligence.schedule import ACTOR, RUN, last_run, run_if_due
from layers.intelligence.similar_cases import SimilarCases
from tests.support.cases import INSIDE_001, plant
from tests.support.database import serving
from tests.support.intel_planting import import_history
from tests.support.security import admin_headers

WEEK = timedelta(days=7)


def _mapped(a: object) -> bool:
    """Whether an array's memory is a mapped file (through any chain of views)."""
    while a is not None:
        if isinstance(a, np.memmap | mmap.mmap):
            return True
        a = getattr(a, "base", None)
    return False


def _audit(db: Engine) -> list[tuple[str, str]]:
    with db.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT action, target FROM audit_log WHERE actor = :a ORDER BY seq"), {"a": ACTOR})]


def test_scheduled_learning_learns_when_due_and_never_activates_a_worse_model(
        db: Engine, tmp_path: Path) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=30)
    root = tmp_path / "intel"
    assert last_run(db) is None
    first = run_if_due(db, WEEK, ["classify", "similar"], root)
    assert first is not None and first.error is None
    (model,) = first.learned
    assert model.activated and model.stored is not None and model.stored.version == 1
    assert first.published is not None and first.published.cases > 0
    assert similar_files.current(root, db) == first.published.folder.name
    assert ("model.learn", "classify v1") in _audit(db) and (RUN, "classify,similar") in _audit(db)
    # not due again within the interval (whichever process asks)
    assert run_if_due(db, WEEK, ["classify"], root) is None
    # a week on, the history got worse (a system whose labels are noise): stored, not active
    import_history(db, tmp_path, weeks=30, seed=5, prefix="X", system="noisy", noisy=True)
    later = run_if_due(db, WEEK, ["classify"], root, now=datetime.now(UTC) + WEEK)
    assert later is not None
    (worse,) = later.learned
    assert worse.stored is not None and not worse.activated and "active" in worse.why
    with db.connect() as conn:
        assert [tuple(r) for r in conn.execute(text(
            "SELECT version, active FROM intel_model ORDER BY version"))] == [(1, True),
                                                                           (2, False)]
    assert ("model.learn", "classify v2") in _audit(db)


def test_the_published_index_is_mapped_and_new_cases_join_its_tail(db: Engine,
                                                                   tmp_path: Path) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=20)
    root = tmp_path / "intel"
    everyone = Scope(city_wide=True)
    in_memory = SimilarCases(db)
    shared = SimilarCases(db, root)
    text_ = "一排路灯都不亮了，晚上很黑"
    before = datetime.now(UTC)
    mine = in_memory.for_text(text_, everyone, before=before)
    assert shared.for_text(text_, everyone, before=before) == mine  # nothing published yet
    assert shared.version is None
    published = similar_files.publish(db, root)
    assert published is not None
    assert shared.for_text(text_, everyone, before=before) == mine  # the same answer, mapped
    assert shared.version == published.folder.name
    index = shared.refresh()
    assert index is not None and index._rows is not None
    assert _mapped(index._rows.data) and _mapped(index._cols.indices)  # not copies
    # a case stored after the publication: in this process's tail, found at once
    with serving(db) as client:
        r = client.post("/cases", headers=admin_headers(client.app, db), json={
            "idempotency_key": "after-the-index", "lon": INSIDE_001[0], "lat": INSIDE_001[1],
            "category": "P0120", "description": "北口路灯杆被车撞歪了，随时会倒"})
        assert r.status_code == 201, r.text
        new_id = r.json()["id"]
    found = shared.for_text("路灯杆被车撞歪了", everyone, before=datetime.now(UTC) + WEEK)
    assert found[0]["id"] == new_id
    assert index._tail is not None and index._tail.shape[0] == 1
    # a newer publication replaces the older one; the process moves to it at its next question
    again = similar_files.publish(db, root)
    assert again is not None and again.folder.name != published.folder.name
    assert not published.folder.exists()
    shared.for_text(text_, everyone, before=before)
    assert shared.version == again.folder.name


def test_publications_merge_the_new_cases_and_refit_when_asked_or_grown(
        db: Engine, tmp_path: Path) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=20)
    root = tmp_path / "intel"
    everyone = Scope(city_wide=True)
    first = similar_files.publish(db, root)
    assert first is not None and first.mode == "full" and "no published version" in first.why
    old = SimilarCases(db, root)
    old_index = old.refresh()  # a process mapping the first version
    assert old_index is not None and old.version == first.folder.name
    unchanged = similar_files.publish(db, root)
    assert unchanged is not None and unchanged.mode == "unchanged"
    assert unchanged.folder == first.folder
    # a few cases stored since: weighed alone and merged, not the whole history again
    import_history(db, tmp_path, weeks=2, seed=7, prefix="N", system="newer")
    with db.connect() as conn:
        new = conn.execute(text("SELECT count(*) FROM case_record WHERE id > :i"),
                           {"i": first.last_id}).scalar()
    merged = similar_files.publish(db, root)
    assert merged is not None and merged.mode == "incremental", merged
    assert merged.added == new and merged.cases == first.cases + new
    assert first.folder.name in merged.why and not first.folder.exists()
    # the process still mapping the deleted first version answers from its pages
    assert old_index.query("一排路灯都不亮了", k=5)
    # a new process maps the merged version and finds the newest cases without a tail
    fresh = SimilarCases(db, root)
    index = fresh.refresh()
    assert index is not None and index._tail is None and len(index) == merged.cases
    found = fresh.for_text("路灯不亮", everyone, k=50, before=datetime.now(UTC) + WEEK)
    assert max(f["id"] for f in found) > first.last_id
    # asked for, a full refit
    full = similar_files.publish(db, root, full=True)
    assert full is not None and full.mode == "full" and "asked" in full.why
    assert full.added == full.cases == merged.cases
    # many cases since the fit (more than a quarter of it): refitted, and the summary says why
    import_history(db, tmp_path, weeks=10, seed=8, prefix="M", system="bulk")
    grown = similar_files.publish(db, root)
    assert grown is not None and grown.mode == "full", grown
    assert "more than 25%" in grown.why and "refitted" in grown.summary()


def test_serve_runs_the_schedule(db: Engine, tmp_path: Path) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=30)
    tree = Settings(intelligence=IntelligenceSettings(
        learn_every_h=24, learn_check_s=0.2, learn_kinds="classify,similar",
        index_dir=tmp_path / "intel"))
    with serving(db, tree):
        deadline = time.monotonic() + 120
        while last_run(db) is None and time.monotonic() < deadline:
            time.sleep(0.5)
    assert last_run(db) is not None
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM intel_model WHERE active")).scalar() == 1
    assert similar_files.current(tmp_path / "intel", db) is not None


def test_learn_publishes_the_index_from_the_command_line(
        db: Engine, tmp_path: Path, cli_env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    plant(db)
    root = tmp_path / "intel"
    monkeypatch.setenv("GRIDCORE_INTEL_INDEX_DIR", str(root))
    empty = CliRunner().invoke(app, ["learn", "--kind", "similar"])
    assert empty.exit_code == 0 and "no case has a description" in empty.output
    import_history(db, tmp_path, weeks=10)
    result = CliRunner().invoke(app, ["learn", "--kind", "similar"])
    assert result.exit_code == 0, result.output
    assert "cases indexed" in result.output and "maps it read-only" in result.output
    assert "full:" in result.output
    name = similar_files.current(root, db)
    assert name is not None and name in result.output
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = "
                                 "'similar.publish' AND target = :t"), {"t": name}).scalar() == 1
    again = CliRunner().invoke(app, ["learn", "--kind", "similar", "--full"])
    assert again.exit_code == 0 and "full: " in again.output and "asked" in again.output
