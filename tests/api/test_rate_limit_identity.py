"""Rate limits take from the bucket of the verified caller (issue 18, finding 6): a made-up
token or key proves nobody, so a new one per request no longer buys a new bucket — it counts
against the address; a signed-in user and a known API key keep buckets of their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.security.identity import issue_token
from gridcore.settings import Settings
from layers.security.users import add_key, add_user
from tests.support.cases import plant, settings

BURST = 3


@pytest.fixture
def limited(db: Engine, tmp_path) -> Iterator[tuple[TestClient, Settings]]:  # type: ignore[no-untyped-def]
    plant(db)
    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={
        "env": "production", "rate_per_s": 0.01, "rate_burst": BURST})
    with TestClient(create_app(tree, engine=db)) as client:
        yield client, tree


def _statuses(client: TestClient, headers: list[dict[str, str]], path: str = "/layers"
              ) -> list[int]:
    return [client.get(path, headers=h).status_code for h in headers]


def test_made_up_tokens_share_the_address_bucket(limited) -> None:  # type: ignore[no-untyped-def]
    client, _ = limited
    junk = [{"Authorization": f"Bearer {uuid.uuid4().hex}"} for _ in range(BURST + 5)]
    statuses = _statuses(client, junk)
    assert statuses[:BURST] == [401] * BURST and set(statuses[BURST:]) == {429}, statuses


def test_made_up_keys_share_the_address_bucket(limited) -> None:  # type: ignore[no-untyped-def]
    client, _ = limited
    junk = [{"X-Api-Key": f"gck_{uuid.uuid4().hex[:12]}_{uuid.uuid4().hex}"}
            for _ in range(BURST + 4)]
    assert set(_statuses(client, junk)[BURST:]) == {429}
    queried = [client.get("/open311/v2/requests.json",
                          params={"api_key": uuid.uuid4().hex}).status_code for _ in range(3)]
    assert queried == [429] * 3


def test_verified_callers_keep_their_own_buckets(limited, db: Engine) -> None:  # type: ignore[no-untyped-def]
    client, tree = limited
    for name in ("li", "wang"):
        add_user(db, name, "correct horse battery", "dispatcher")
    li, wang = ({"Authorization": "Bearer " + issue_token(tree.security, n, "dispatcher")[0]}
                for n in ("li", "wang"))
    # a real API key: its first request is checked in the database (the address pays for
    # it), from then on the key has a bucket of its own
    key = {"X-Api-Key": add_key(db, "sensor", "open311")}
    assert client.get("/open311/v2/requests.json", headers=key).status_code == 200
    # the address's bucket is spent by junk...
    _statuses(client, [{"Authorization": "Bearer junk"}] * (BURST + 1))
    assert client.get("/layers").status_code == 429
    # ...while each signed-in user has a bucket of its own
    assert _statuses(client, [li] * BURST) == [200] * BURST
    assert client.get("/layers", headers=li).status_code == 429
    assert _statuses(client, [wang] * BURST) == [200] * BURST
    assert _statuses(client, [key] * BURST, "/open311/v2/requests.json") == [200] * BURST
