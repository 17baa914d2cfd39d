"""OGC API – Features driven by two independent clients against a live server: owslib's
``Features`` client and GDAL's OAPIF driver (``ogrinfo``), plus the protocol details they do not
look at (paging links, filters, bbox-crs, restricted fields, errors)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from tests.support.map_planted import GRID_CODES, plant
from tests.support.thread_server import live_server


@pytest.fixture
def server(db: Engine) -> Iterator[str]:
    plant(db)
    with live_server(db) as url:
        yield url


def test_owslib_reads_landing_conformance_collections_and_items(server: str) -> None:
    from owslib.ogcapi.features import Features

    api = Features(server)
    conforms = api.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conforms
    ids = {c["id"] for c in api.collections()["collections"]}
    assert {"areas", "grids", "parts", "entities", "cases"} <= ids
    grids = api.collection_items("grids", limit=100)
    assert grids["numberMatched"] == 6 == grids["numberReturned"]  # current generation only
    assert sorted(f["id"] for f in grids["features"]) == GRID_CODES
    one = api.collection_item("grids", GRID_CODES[4])
    assert one["properties"]["street_code"] == "110101001"
    boxed = api.collection_items("grids", bbox=[24.9401, 60.1681, 24.9419, 60.1689])
    assert [f["id"] for f in boxed["features"]] == [GRID_CODES[0]]
    api_doc = api.api()  # the service-desc link of type version=3.0
    assert api_doc["openapi"].startswith("3.0.")
    assert "/collections/{collection_id}/items" in api_doc["paths"]


def test_the_openapi_30_definition_is_valid_openapi_30(client) -> None:  # type: ignore[no-untyped-def]
    """The conformance class oas30 promises an OpenAPI 3.0 definition: the translation of
    FastAPI's 3.1 document validates against the 3.0 schema, which the original does not."""
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    links = client.get("/").json()["links"]
    descs = {link["type"]: link["href"] for link in links if link["rel"] == "service-desc"}
    assert set(descs) == {"application/vnd.oai.openapi+json;version=3.0",
                          "application/vnd.oai.openapi+json;version=3.1"}
    answer = client.get("/openapi-3.0.json")
    assert answer.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = answer.json()
    assert doc["openapi"] == "3.0.3"
    validate(doc)
    original = client.get("/openapi.json").json()
    assert original["openapi"].startswith("3.1")
    assert doc["paths"].keys() == original["paths"].keys()
    with pytest.raises(OpenAPIValidationError):
        validate({**original, "openapi": "3.0.3"})  # null types, examples lists…
    grid = doc["paths"]["/cases"]["get"]["parameters"][0]
    assert grid["schema"] == {"type": "string", "nullable": True, "title": "Grid"}




def _ogr(*args: str) -> str:
    if shutil.which("ogrinfo") is None:
        pytest.skip("GDAL's ogrinfo is not installed (scripts/install.sh --test installs it)")
    done = subprocess.run(["ogrinfo", *args], capture_output=True, text=True, timeout=120,
                          env={"GDAL_HTTP_TIMEOUT": "30", "CPL_DEBUG": "OFF",
                               "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_gdal_oapif_lists_layers_and_pages_through_features(server: str) -> None:
    listing = _ogr("-ro", "-q", f"OAPIF:{server}/")
    for layer in ("areas", "grids", "parts", "entities", "cases"):
        assert layer in listing
    # A page size of 2 makes GDAL follow three `next` links for the six grids.
    out = _ogr("-ro", "-al", "-oo", "PAGE_SIZE=2", f"OAPIF:{server}/collections/grids")
    assert out.count("OGRFeature(grids)") == 6
    for code in GRID_CODES:
        assert code in out
    assert "MULTIPOLYGON" in out
    entities = _ogr("-ro", "-al", f"OAPIF:{server}/collections/entities")
    assert "Kluuvi school" in entities  # public
    assert "Household 1" not in entities and "110101199001011234" not in entities  # restricted


def test_keyset_links_walk_forward_and_back(client) -> None:
    plant(client.app.state.engine)
    first = client.get("/collections/grids/items?limit=4").json()
    rels = {lk["rel"]: lk["href"] for lk in first["links"]}
    assert "prev" not in rels and first["numberMatched"] == 6
    second = client.get(rels["next"].replace("http://testserver", "")).json()
    assert [f["id"] for f in second["features"]] == GRID_CODES[4:]
    rels2 = {lk["rel"]: lk["href"] for lk in second["links"]}
    assert "next" not in rels2
    back = client.get(rels2["prev"].replace("http://testserver", "")).json()
    assert [f["id"] for f in back["features"]] == GRID_CODES[:4]
    # A row removed before the cursor does not shift the next page (keys, not offsets).
    with client.app.state.engine.begin() as conn:
        conn.execute(text("DELETE FROM unit_grid WHERE code = :c AND gen_to IS NULL"),
                      {"c": GRID_CODES[0]})
    again = client.get(rels["next"].replace("http://testserver", "")).json()
    assert [f["id"] for f in again["features"]] == GRID_CODES[4:]


def test_filters_datetime_bbox_crs_and_limit_cap(client) -> None:
    plant(client.app.state.engine)
    parts = client.get("/collections/parts/items?state=damaged,missing").json()
    assert sorted(f["properties"]["state"] for f in parts["features"]) == ["damaged", "missing"]
    cases = client.get("/collections/cases/items?clock=red&open=true").json()
    assert [f["id"] for f in cases["features"]] == [3]
    # EPSG:4326 bboxes are lat/lon by definition.
    latlon = client.get("/collections/grids/items", params={
        "bbox": "60.1681,24.9401,60.1689,24.9419",
        "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4326"}).json()
    assert [f["id"] for f in latlon["features"]] == [GRID_CODES[0]]
    assert client.get("/collections/cases/items?datetime=2000-01-01/2000-12-31").json()[
        "numberReturned"] == 0
    assert client.get("/collections/cases/items?datetime=../2100-01-01T00:00:00Z").json()[
        "numberReturned"] == 4
    client.app.state.settings.api.page_limit_max = 3
    capped = client.get("/collections/grids/items?limit=1000").json()
    assert capped["numberReturned"] == 3


def test_refusals_are_precise_and_never_built_into_sql(client) -> None:
    plant(client.app.state.engine)
    r = client.get("/collections/grids/items?geom=1")
    assert r.status_code == 400 and "not a filterable property" in r.json()["detail"]
    r = client.get("/collections/entities/items?restricted_attributes=x")
    assert r.status_code == 400
    r = client.get("/collections/grids/items", params={"code": "x' OR '1'='1"})
    assert r.status_code == 200 and r.json()["numberReturned"] == 0
    assert client.get("/collections/grids/items?bbox=1,2,3").status_code == 422
    assert client.get("/collections/nope/items").status_code == 404
    assert client.get("/collections/grids/items/999").status_code == 404
    assert client.get("/collections/cases/items/abc").status_code == 404
    r = client.get("/collections/entities/items")
    assert r.headers["content-type"].startswith("application/geo+json")
    assert [f["id"] for f in r.json()["features"]] == ["ENT-2"]  # the restricted row is out
    body = json.dumps(r.json())
    assert "restricted_attributes" not in body and "13800000000" not in body
    assert client.get("/collections/entities/items/ENT-1").status_code == 404


def test_case_layer_follows_the_case_table(client) -> None:
    plant(client.app.state.engine)
    cases = client.get("/collections/cases/items").json()["features"]
    clocks = {f["id"]: f["properties"]["clock"] for f in cases}
    assert clocks == {1: "green", 2: "yellow", 3: "red", 4: "none"}
    ids = [c["id"] for c in client.get("/collections").json()["collections"]]
    assert "cases" in ids
