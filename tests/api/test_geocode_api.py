"""``GET /geocode``: ranked candidates with confidence, how the query was read, the threshold
intake files at; bad queries are 422s naming ``q``."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.support import helsinki_city


def test_geocode_answers_candidates_with_grids(client: TestClient, db: Engine,
                                               tmp_path: Path) -> None:
    helsinki_city.plant(db)
    helsinki_city.import_helsinki_addresses(db, tmp_path)
    answer = client.get("/geocode", params={"q": "Manerheimintie 6", "limit": 3},
                        headers={"X-Role": "dispatcher"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["query"]["readings"] == ["address", "text"] and body["min_confidence"] == 0.75
    top = body["candidates"][0]
    assert top["label"] == "Mannerheimintie 6" and top["kind"] == "address"
    assert top["grid_code"].startswith(helsinki_city.COMMUNITY) and len(body["candidates"]) <= 3
    assert set(top["match"]) >= {"text", "house_number"}
    zh = client.get("/geocode", params={"q": "建国路与东三环中路交叉口"},
                    headers={"X-Role": "grid_worker"}).json()
    assert zh["candidates"][0]["kind"] == "intersection"
    assert zh["query"]["intersection"] == ["建国路", "东三环中路"]


def test_bad_queries_are_422(client: TestClient) -> None:
    for params in ({"q": "!!!"}, {"q": ""}, {}, {"q": "x" * 300}, {"q": "a", "limit": 0}):
        answer = client.get("/geocode", params=params, headers={"X-Role": "dispatcher"})
        assert answer.status_code == 422, (params, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
