"""Inputs that crashed the server (issue 18, finding 4): 100,000 nested ``[`` on ``POST /cases``
and ``POST /resolve``, a 68-byte PNG whose header says 30000×30000, a FeatureCollection whose
``features`` is a number or a boolean. Each is a problem+json 4xx — from anyone (in
production an anonymous caller is refused before its body is read) and from a signed-in
caller whose body is read."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from api.security.identity import issue_token
from gridcore.settings import Settings
from layers.security.users import add_user
from tests.support.cases import INSIDE_001, plant, settings

NESTED = b"[" * 100_000
TOO_DEEP = b'{"idempotency_key": "deep", "category": ' + NESTED


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG that is a header and nothing else: it claims width × height pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 3, 9)  # a first row's worth, so the file is 68 bytes
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


@pytest.fixture
def production(db: Engine, tmp_path) -> Iterator[tuple[TestClient, dict[str, str]]]:  # type: ignore[no-untyped-def]
    plant(db)
    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={"env": "production"})
    add_user(db, "worker", "correct horse battery", "grid_worker", areas=("110101001001",))
    token, _ = issue_token(tree.security, "worker", "grid_worker")
    with TestClient(create_app(tree, engine=db), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def _problem(response, *statuses: int) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")


REQUESTS = [
    ("POST", "/cases", {"content": NESTED, "headers": {"Content-Type": "application/json"}}),
    ("POST", "/cases", {"content": TOO_DEEP, "headers": {"Content-Type": "application/json"}}),
    ("POST", "/resolve", {"content": NESTED, "headers": {"Content-Type": "application/json"}}),
    ("POST", "/resolve", {"json": {"type": "FeatureCollection", "features": 5}}),
    ("POST", "/resolve", {"json": {"type": "FeatureCollection", "features": True}}),
    ("POST", "/resolve", {"json": True}),
    # the field app's routes: a lifecycle step's JSON body
    ("POST", "/cases/1/verify", {"content": NESTED,
                                 "headers": {"Content-Type": "application/json"}}),
    ("POST", "/cases", {"data": {"idempotency_key": "bomb", "category": "E0103",
                                 "lon": str(INSIDE_001[0]), "lat": str(INSIDE_001[1])},
                        "files": {"photos": ("bomb.png", bomb_png(), "image/png")}}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), REQUESTS)
def test_crash_inputs_are_4xx_problems(production, method: str, path: str,  # type: ignore[no-untyped-def]
                                       kwargs: dict) -> None:
    client, signed_in = production
    _problem(client.request(method, path, **kwargs), 401)  # anonymous: refused, body unread
    _problem(client.request(method, path, **{**kwargs, "headers": {
        **kwargs.get("headers", {}), **signed_in}}), 400, 413, 422)


def test_the_bomb_is_named(production) -> None:  # type: ignore[no-untyped-def]
    client, signed_in = production
    assert len(bomb_png()) == 68
    response = client.post("/cases", headers=signed_in, data=REQUESTS[-1][2]["data"],
                           files=REQUESTS[-1][2]["files"])
    # GRIDCORE_MAX_PHOTO_PIXELS (the field app's limit): 413 before anything is decoded
    assert response.status_code == 413 and "bomb.png" in response.json()["detail"]
    assert response.json()["field"] == "photos"


@pytest.mark.parametrize("path", ["/auth/refresh", "/auth/signout"])
def test_a_refresh_token_route_reads_any_body_safely(production, path: str) -> None:  # type: ignore[no-untyped-def]
    # anyone may call these (the refresh token in the body is the credential)
    client, _ = production
    _problem(client.post(path, content=NESTED, headers={"Content-Type": "application/json"}),
             400, 422)
    _problem(client.post(path, json=[1, 2]), 400, 422)
    _problem(client.post(path, json={"refresh_token": "gcr_made.up"}), 401)
