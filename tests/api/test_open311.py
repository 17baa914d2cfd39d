"""Open311 GeoReport v2 against a live server process, driven by the `georeport` client.

georeport 0.3.1 covers discovery-free GETs (services, definitions, requests) but has no POST
method, and the other PyPI clients (`open311` 1.1, `three` 0.8) are Python-2-only; so the POST
is made with httpx exactly as the GeoReport v2 spec describes (form-encoded, api_key)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import xmltodict
from georeport import GeoReport
from sqlalchemy import text

from tests.support.cases import GRID_001, INSIDE_001, OUTSIDE, plant
from tests.support.database import row_counts
from tests.support.live_server import live_server


def _serving(database_url: str, tmp_path, **extra: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    env = {"GRIDCORE_DATABASE_URL": database_url, "GRIDCORE_OPEN311_API_KEYS": "k-test",
           "GRIDCORE_MEDIA_DIR": str(tmp_path / "media"), **extra}
    with live_server(env) as base:
        yield base + "/open311/v2"


@pytest.fixture(scope="module")
def _module_server(database_url: str, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """One server process for the module's tests (a start took ~11 s under load); each test
    has the database emptied and the city planted again (``server``)."""
    yield from _serving(database_url, tmp_path_factory.mktemp("open311"))


@pytest.fixture
def server(db, _module_server: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    plant(db)
    yield _module_server


@pytest.fixture
def public_server(db, database_url: str, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    plant(db)
    yield from _serving(database_url, tmp_path, GRIDCORE_OPEN311_PUBLIC_FEED="true")


def post(root: str, fmt: str = "json", **fields: object) -> httpx.Response:
    form = {"api_key": "k-test", "service_code": "E0103", "lat": INSIDE_001[1],
            "long": INSIDE_001[0], "description": "路面有油污", "email": "a@example.org"}
    form.update(fields)
    return httpx.post(f"{root}/requests.{fmt}", data={k: str(v) for k, v in form.items()
                                                       if v is not None})


def test_services_and_definitions(server: str) -> None:
    client = GeoReport(server)
    services = client.get_service_list()
    codes = {s["service_code"] for s in services}
    assert {"P0101", "P0120", "E0103"} <= codes
    lamp = next(s for s in services if s["service_code"] == "P0120")
    assert "路灯" in lamp["service_name"] and lamp["metadata"] is True
    definition = client.get_service_definition("P0120")
    assert definition["attributes"][0]["code"] == "source"
    xml = GeoReport(server, output_format="xml")
    assert any(s["service_code"] == "E0103" for s in xml.get_service_list())
    assert httpx.get(f"{server}/services/E9998.json").status_code == 404
    disc = httpx.get(f"{server}/discovery.json").json()
    assert disc["endpoints"][0]["url"] == server


def get(root: str, path: str, **params: object) -> httpx.Response:
    """A GET as an Open311 app sends it with its key (reads need one by default)."""
    return httpx.get(f"{root}/{path}", params={"api_key": "k-test", **params})


def test_post_then_read_back(server: str, db) -> None:  # type: ignore[no-untyped-def]
    r = post(server)
    assert r.status_code == 201, r.text
    sid = r.json()[0]["service_request_id"]
    again = post(server)  # an identical re-post is the same request
    assert again.status_code == 200 and again.json()[0]["service_request_id"] == sid
    one = get(server, f"requests/{sid}.json").json()[0]
    assert one["status"] == "open" and one["service_code"] == "E0103"
    assert one["agency_responsible"] == "D_GRID" and one["lat"] == INSIDE_001[1]
    ids = [x["service_request_id"] for x in get(server, "requests.json", status="open").json()]
    assert ids == [sid]
    assert get(server, "requests.json", status="closed").json() == []
    assert get(server, "requests.json", service_code="P0101").json() == []
    assert len(get(server, "requests.json", service_request_id=f"{sid},999999").json()) == 1
    xml_one = xmltodict.parse(get(server, f"requests/{sid}.xml").content)
    request = xml_one["service_requests"]["request"]
    assert request["service_request_id"] == sid and request["status"] == "open"
    # without a key there is nothing to read (no public feed by default)
    assert httpx.get(f"{server}/requests/{sid}.json").status_code == 403
    with db.connect() as conn:
        assert conn.execute(text("SELECT source FROM case_record")).scalar() == "open311"


def test_public_feed_serves_georeport_clients(public_server: str) -> None:
    r = post(public_server, address_string="东华门大街 12 号")
    assert r.status_code == 201, r.text
    sid = r.json()[0]["service_request_id"]
    client = GeoReport(public_server)  # the stock client sends no key on GETs
    one = client.get_service_request(sid)
    assert one["status"] == "open" and one["service_code"] == "E0103"
    assert one["address"] == ""  # a street address would undo the rounded location
    assert [x["service_request_id"] for x in client.get_service_requests(status="open")] \
        == [sid]
    xml_one = GeoReport(public_server, output_format="xml").get_service_request(sid)
    assert xml_one["service_request_id"] == sid


def test_refusals_write_nothing(server: str, db) -> None:  # type: ignore[no-untyped-def]
    before = row_counts(db)
    r = post(server, api_key="wrong")
    assert r.status_code == 403 and "api_key" in r.json()[0]["description"]
    r = post(server, service_code="E9998")
    assert r.status_code == 400 and "E9998" in r.json()[0]["description"]
    r = post(server, lat=OUTSIDE[1], long=OUTSIDE[0])
    assert r.status_code == 400 and "outside" in r.json()[0]["description"]
    r = post(server, "xml", lat=None)
    assert r.status_code == 400
    assert "lat" in xmltodict.parse(r.content)["errors"]["error"]["description"]
    assert row_counts(db) == before
    r = httpx.get(f"{server}/requests.json", params={"start_date": "2020-01-01T00:00:00Z",
                                                      "end_date": "2021-01-01T00:00:00Z",
                                                      "api_key": "k-test"})
    assert r.status_code == 400 and "90 days" in r.json()[0]["description"]


def test_names_addresses_and_extension_fields(server: str) -> None:
    """service_name is the class's name in the caller's language, not its code; address is
    the report's address, not the grid code; the grid and the department are extension
    fields (issue 19, item 9)."""
    key = {"api_key": "k-test"}  # reads need a key once the access table lands (issue 18)
    services = httpx.get(f"{server}/services.json").json()
    lamp = next(s for s in services if s["service_code"] == "P0120")
    assert lamp["service_name"] == "路灯"  # Chinese first
    english = httpx.get(f"{server}/services.json", headers={"Accept-Language": "en"}).json()
    assert next(s for s in english if s["service_code"] == "P0120")["service_name"] \
        == "street lamp"
    with_address = post(server, address_string="东华门大街 12 号")
    without = post(server, description="另一处油污")
    assert with_address.status_code == 201 and without.status_code == 201
    sid = with_address.json()[0]["service_request_id"]
    one = httpx.get(f"{server}/requests/{sid}.json", params=key).json()[0]
    assert one["service_name"] == "道路不洁" and one["service_code"] == "E0103"
    assert one["address"] == "东华门大街 12 号" and one["address_id"] == ""
    assert one["extended_attributes"] == {
        "grid_code": GRID_001, "community_code": "110101001001", "street_code": "110101001",
        "district_code": "110101", "department_code": "D_GRID", "state": "reported"}
    en = httpx.get(f"{server}/requests.json", params=key,
                   headers={"Accept-Language": "en-GB,en;q=0.9"})
    by_id = {r["service_request_id"]: r for r in en.json()}
    assert by_id[sid]["service_name"] == "dirty road"
    assert by_id[without.json()[0]["service_request_id"]]["address"] == ""  # never a grid code
    xml = xmltodict.parse(httpx.get(f"{server}/requests/{sid}.xml", params=key).content)
    request = xml["service_requests"]["request"]
    assert request["address"] == "东华门大街 12 号"
    assert request["extended_attributes"]["grid_code"] == GRID_001
    # a changed address under the same derived key is another report, not a resend
    assert post(server, address_string="东华门大街 14 号").status_code == 201
    assert post(server, address_string="x" * 301).status_code == 400
