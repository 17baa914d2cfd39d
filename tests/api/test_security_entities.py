"""9+X entities: masked by default, unmasked only for an authorised role in its area with a
stated purpose, every unmasked read audited; and the request guards (size, rate)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from api.app import create_app
from api.security.identity import issue_token
from layers.security import audit, users

GRID = "320582110152102"
OTHER_GRID = "320582110153001"
PERSON = {"姓名": "张三丰", "id_number": "320582199001011234", "phone": "13812345678"}


def _entity(db: Engine, code: str, grid: str) -> None:
    with db.begin() as conn:
        conn.execute(text(
            "INSERT INTO governance_entity (code, area, type, name, grid_code, sensitivity, "
            "restricted_attributes, geom) VALUES (:c, 'P02', 'resident', '住户', :g, "
            "'restricted', CAST(:r AS jsonb), ST_SetSRID(ST_MakePoint(120.6, 31.3), 4326))"),
            {"c": code, "g": grid, "r": __import__("json").dumps(PERSON, ensure_ascii=False)})


def _bearer(client: TestClient, name: str) -> dict[str, str]:
    token, _ = issue_token(client.app.state.settings.security, name, "")
    return {"Authorization": f"Bearer {token}"}


def test_masked_by_default_unmasked_with_purpose_and_audited(client: TestClient,
                                                             db: Engine) -> None:
    _entity(db, "E1", GRID)
    _entity(db, "E2", OTHER_GRID)
    users.add_user(db, "wang", "correct horse battery", "grid_worker", areas=(GRID,))
    users.add_user(db, "ana", "correct horse battery", "analyst")
    users.add_user(db, "zhou", "correct horse battery", "manager", areas=("320582110",))
    worker, analyst, manager = (_bearer(client, n) for n in ("wang", "ana", "zhou"))

    body = client.get("/entities/E1", headers=worker).json()
    assert body["masked"] and body["restricted_attributes"] == {
        "姓名": "张**", "id_number": "3205**********1234", "phone": "138****5678"}
    assert "320582199001011234" not in client.get("/entities/E1", headers=analyst).text

    # outside the worker's grid: not found (existence not leaked), masked or not
    assert client.get("/entities/E2", headers=worker).status_code == 404
    assert client.get("/entities/E2?unmask=true&purpose=home visit",
                      headers=worker).status_code == 404
    assert client.get("/entities/NOPE", headers=worker).status_code == 404
    # no purpose → 422; analyst may never unmask → 403; no audit row for refusals
    assert client.get("/entities/E1?unmask=true", headers=worker).status_code == 422
    assert client.get("/entities/E1?unmask=true&purpose=statistics",
                      headers=analyst).status_code == 403
    assert audit.recent(db, target="entity:E1") == []

    full = client.get("/entities/E1?unmask=true&purpose=home visit 入户走访", headers=worker)
    assert full.status_code == 200 and full.json()["restricted_attributes"] == PERSON
    assert client.get("/entities/E2?unmask=true&purpose=street review",
                      headers=manager).status_code == 200
    rows = audit.recent(db)
    assert [(r["actor"], r["target"]) for r in rows[:2]] == [("zhou", "entity:E2"),
                                                           ("wang", "entity:E1")]
    assert rows[1]["details"]["purpose"] == "home visit 入户走访"
    assert rows[1]["remote_addr"] and audit.verify(db).ok


def test_body_size_limit(client: TestClient) -> None:
    size = client.app.state.settings.api.max_body_bytes
    response = client.post("/auth/token", content=b"x" * (size + 1),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(size // 65536 + 2):
            yield b"y" * 65536

    chunked = client.post("/auth/token", content=chunks(),
                          headers={"content-type": "application/x-www-form-urlencoded"})
    assert chunked.status_code == 413


def test_rate_limit_per_client(db: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GRIDCORE_RATE_PER_S", "0.5")
    monkeypatch.setenv("GRIDCORE_RATE_BURST", "3")
    app = create_app(engine=db)
    with TestClient(app) as client:
        codes = [client.get("/auth/me").status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        limited = client.get("/auth/me")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        # a made-up credential proves nobody: it shares the address's (spent) bucket...
        made_up = client.get("/auth/me", headers={"Authorization": "Bearer other"})
        assert made_up.status_code == 429
        # ...while a signed-in user has a bucket of its own
        users.add_user(db, "rate-li", "correct horse battery", "dispatcher")
        assert client.get("/auth/me", headers=_bearer(client, "rate-li")).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_sign_in_attempts_are_limited_per_address(db: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GRIDCORE_SIGNIN_RATE_PER_S", "0.01")
    monkeypatch.setenv("GRIDCORE_SIGNIN_BURST", "3")
    with TestClient(create_app(engine=db)) as client:
        codes = [client.post("/auth/token", data={"username": f"u{i}",
                                                  "password": "guess-guess-guess"}).status_code
                 for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        assert client.get("/healthz").status_code == 200


def test_nul_characters_are_refused_not_a_500(client: TestClient) -> None:
    # found by the schemathesis run: PostgreSQL text cannot hold NUL
    for url in ("/cases?grid=%00", "/collections/grids/items?code=a%00",
                "/open311/v2/requests.json?service_code=%00"):
        response = client.get(url)
        assert response.status_code == 422, (url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    signin = client.post("/auth/token", data={"username": "a\x00b", "password": "x" * 12})
    assert signin.status_code == 401
