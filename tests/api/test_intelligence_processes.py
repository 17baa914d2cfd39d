"""A model activated while the service runs reaches every worker process without a restart:
the real ``gridcore serve --workers 2`` (a socket per worker, so connections spread over two
OS processes), each answer traced to the process that gave it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
from sqlalchemy import Engine

from api.security.identity import issue_token
from gridcore.settings import SecuritySettings
from layers.intelligence.learning import learn
from layers.security.users import add_user
from tests.support.cases import plant
from tests.support.intel_planting import import_history
from tests.support.live_server import live_server

TRIES = 60  # fresh connections to reach both processes: each lands on one at random


def _answer(base: str, headers: dict[str, str]) -> tuple[int, int]:
    """(the worker's pid, the classifier's version) of one answer: the event stream's hello
    on the same kept-alive connection names the process that just answered /classify."""
    with httpx.Client(base_url=base, headers=headers, timeout=30,
                      limits=httpx.Limits(max_connections=1)) as client:
        r = client.post("/classify", json={"text": "路灯不亮了"})
        assert r.status_code == 200, r.text
        version = int(r.json()["model"]["version"])
        with client.stream("GET", "/events") as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if line.startswith("data:") and '"worker"' in line:
                    return int(json.loads(line[5:])["worker"]), version
    raise AssertionError("the event stream said no hello")


def _every_process(base: str, headers: dict[str, str]) -> dict[int, set[int]]:
    """The versions each worker process answered with: a dozen answers at least, more until
    both processes have answered."""
    seen: dict[int, set[int]] = {}
    for asked in range(1, TRIES + 1):
        pid, version = _answer(base, headers)
        seen.setdefault(pid, set()).add(version)
        if len(seen) == 2 and asked >= 12:
            break
    assert len(seen) == 2, f"only one worker process answered in {TRIES} connections: {seen}"
    return seen


def test_a_model_activated_meanwhile_reaches_both_worker_processes(
        db: Engine, database_url: str, tmp_path: Path) -> None:
    plant(db)
    import_history(db, tmp_path, weeks=30)
    (first,) = learn(db, ["classify"])
    assert first.activated
    add_user(db, "intel-admin", "a-long-enough-password", "admin")
    token, _ = issue_token(SecuritySettings(env="development",
                                            secret_key=os.environ["GRIDCORE_SECRET_KEY"]),
                           "intel-admin", "admin", minutes=30)
    headers = {"Authorization": f"Bearer {token}"}
    with live_server({"GRIDCORE_DATABASE_URL": database_url,
                      "GRIDCORE_MEDIA_DIR": str(tmp_path / "media")},
                     workers=2, supervisor=True) as base:
        before = _every_process(base, headers)
        assert all(v == {1} for v in before.values()), before
        import_history(db, tmp_path, weeks=40, seed=2, prefix="N", system="newer")
        (second,) = learn(db, ["classify"])  # another process (this one) activates it
        assert second.activated, second.why
        after = _every_process(base, headers)
        assert set(after) == set(before), (before, after)  # the same two processes
        assert all(v == {2} for v in after.values()), after  # each serves the new one
