"""A department handler's worklist: accepting a case (签收) makes the acceptor hold it (the
case and its event show the assignee), and GET /me/tasks?mine=true leaves out the cases another
handler holds — on the server, counts included; other roles' worklists are their own already."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from api.security.identity import issue_token
from layers.security.users import add_user
from tests.support.case_api import DESK, api, new, step
from tests.support.cases import LAMP

__all__ = ["api"]  # the fixture, from tests.support.case_api


def _dispatched(api: TestClient) -> int:
    cid = new(api, LAMP, category="P0120")
    for action in ("verify", "register", "dispatch"):
        step(api, cid, action, DESK)
    return cid


def test_accepting_assigns_and_only_mine_filters_on_the_server(api: TestClient, db) -> None:  # type: ignore[no-untyped-def]
    for name in ("h-a", "h-b"):
        add_user(db, name, f"password-{name}-long", "department_handler", department="D_LAMP")
    security = api.app.state.settings.security  # type: ignore[attr-defined]

    def as_(user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(security, user, 'x')[0]}"}

    taken_by_a, taken_by_b, free = _dispatched(api), _dispatched(api), _dispatched(api)
    done = step(api, taken_by_a, "accept", as_("h-a"))
    assert done["assignee"] == "h-a"  # shown on the case
    step(api, taken_by_b, "accept", as_("h-b"))
    with db.connect() as conn:
        assert conn.execute(text("SELECT assignee FROM case_record WHERE id = :i"),
                            {"i": taken_by_b}).scalar_one() == "h-b"
        event = conn.execute(text("SELECT assignee FROM case_event WHERE case_id = :i "
                                  "ORDER BY id DESC LIMIT 1"), {"i": taken_by_a}).scalar_one()
    assert event == "h-a"

    every = api.get("/me/tasks", headers=as_("h-a")).json()
    assert {taken_by_a, taken_by_b, free} <= {i["id"] for i in every["items"]}
    assert every["mine"] is False
    mine = api.get("/me/tasks", params={"mine": "true"}, headers=as_("h-a")).json()
    ids = {i["id"] for i in mine["items"]}
    assert taken_by_a in ids and free in ids and taken_by_b not in ids
    assert mine["mine"] is True
    assert sum(mine["counts"].values()) == sum(every["counts"].values()) - 1

    # a dispatcher's worklist is its own already: mine is refused with a clear field
    r = api.get("/me/tasks", params={"mine": "true"}, headers=DESK)
    assert r.status_code == 422 and r.json()["field"] == "mine"
