"""A request whose query runs past the statement time limit (GRIDCORE_STATEMENT_TIMEOUT_MS) is
cancelled by PostgreSQL. The database is up, so the answer must not say "unreachable or
restarting" (found by the 10 M benchmark: a live-counted z10 tile of five years of cases): it
is a 503 ``query-timeout`` that says what helps, localised, and the next request is served."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.routes import cases as case_routes
from api.security.identity import issue_token
from gridcore.settings import Settings
from layers.security.users import add_user
from tests.support.cases import plant, settings


@pytest.fixture
def client(db: Engine, tmp_path) -> Iterator[tuple[TestClient, dict[str, str]]]:  # type: ignore[no-untyped-def]
    plant(db)
    tree = Settings(cases=settings(tmp_path))
    add_user(db, "desk", "correct horse battery", "dispatcher")
    token, _ = issue_token(tree.security, "desk", "dispatcher")
    with TestClient(create_app(tree, engine=db), raise_server_exceptions=False) as c:
        yield c, {"Authorization": f"Bearer {token}"}


def test_a_cancelled_query_is_a_timeout_not_an_outage(
        client: tuple[TestClient, dict[str, str]], db: Engine,
        monkeypatch: pytest.MonkeyPatch) -> None:
    c, auth = client
    real = case_routes.list_cases

    def slow(engine: Engine, *args: Any, **kwargs: Any) -> Any:
        with engine.begin() as conn:  # the real server cancels it, as it cancels a slow scan
            conn.execute(text("SET LOCAL statement_timeout = 50"))
            conn.execute(text("SELECT pg_sleep(2)"))
        return real(engine, *args, **kwargs)

    monkeypatch.setattr(case_routes, "list_cases", slow)
    for lang, title in (("zh-CN", "查询超时"), ("en", "Query took too long")):
        r = c.get("/cases", headers={**auth, "Accept-Language": lang})
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["Retry-After"] == "10"
        body = r.json()
        assert body["type"].endswith("/query-timeout")
        assert body["title"] == title
        assert "narrow it" in body["detail"] and "unreachable" not in body["detail"]

    monkeypatch.setattr(case_routes, "list_cases", real)
    assert c.get("/cases", headers=auth).status_code == 200
    assert c.get("/readyz").status_code == 200
