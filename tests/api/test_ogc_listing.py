"""The OGC list of collections names only what the caller may read (issue 19, item 8): a
listed collection the caller then gets 401 or 403 on makes clients that open every listed
layer fail (GDAL's ogrinfo reported errors on ``cases``). Production mode, real tokens."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.security.identity import issue_token
from gridcore.settings import Settings
from layers.security import users
from tests.support.cases import GRID_001, plant, settings

PASSWORD = "correct horse battery"


def test_collections_lists_what_the_caller_may_read(db: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    plant(db)
    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={"env": "production",
                                                     "public_layers": "grids,areas"})
    headers = {}
    for name, role, areas, dept in (("w1", "grid_worker", (GRID_001,), None),
                                    ("handler", "department_handler", (), "D_GRID"),
                                    ("analyst", "analyst", (), None)):
        users.add_user(db, name, PASSWORD, role, department=dept, areas=areas)
        token, _ = issue_token(tree.security, name, role)
        headers[name] = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(tree, engine=db)) as client:
        def listed(who: dict[str, str]) -> set[str]:
            r = client.get("/collections", headers=who)
            assert r.status_code == 200, r.text
            return {c["id"] for c in r.json()["collections"]}

        assert listed({}) == {"grids", "areas"}  # anonymous: what the city publishes
        everything = listed(headers["analyst"])
        assert {"grids", "areas", "parts", "entities", "cases"} <= everything
        assert listed(headers["w1"]) == everything
        # a department handler may not read 9+X entities: not listed, and indeed refused
        handler = listed(headers["handler"])
        assert handler == everything - {"entities"}
        assert client.get("/collections/entities/items",
                          headers=headers["handler"]).status_code == 403
        for layer in handler:  # every listed collection opens
            r = client.get(f"/collections/{layer}/items?limit=1", headers=headers["handler"])
            assert r.status_code == 200, (layer, r.text)
