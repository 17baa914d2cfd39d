"""OGC API – Features driven by two independent clients against a live server: owslib's
``Features`` client and GDAL's OAPIF driver (``ogrinfo``), plus the protocol details they do not
look at (paging links, filters, bbox-crs, restricted fields, errors)."""

from __future__ import annotations

import json
import math
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
    # OGC API Features: an unknown or invalid query parameter is a 400, never a 422
    r = client.get("/collections/grids/items?geom=1")
    assert r.status_code == 400 and "not a filterable property" in r.json()["detail"]
    assert r.json()["type"].endswith("/unknown-parameter")
    r = client.get("/collections/entities/items?restricted_attributes=x")
    assert r.status_code == 400
    r = client.get("/collections/grids/items", params={"code": "x' OR '1'='1"})
    assert r.status_code == 400 and "does not match" in r.json()["detail"]  # never SQL
    r = client.get("/collections/grids/items", params={"name": "x' OR '1'='1"})
    assert r.status_code == 200 and r.json()["numberReturned"] == 0
    assert client.get("/collections/grids/items?bbox=1,2,3").status_code == 400
    for query in ("limit=unlimited", "limit=0", "ooga=booga", "datetime=yesterday",
                  "crs=EPSG:2227", "bbox-crs=urn:nope&bbox=1,2,3,4", "f=xml"):
        r = client.get(f"/collections/parts/items?{query}")
        assert r.status_code == 400, (query, r.text)
    r = client.get("/collections/parts/items?state=brokn")
    assert r.status_code == 400 and "must be one of intact, damaged" in r.json()["detail"]
    assert client.get("/collections/cases/items?open=maybe").status_code == 400
    assert client.get("/collections/cases/items?id=x").status_code == 400
    assert client.get("/collections/grids/items/x?ooga=1").status_code == 400
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


def test_bbox_selects_what_intersects_the_box_in_items_tiles_and_exports(client, tmp_path
                                                                         ) -> None:  # type: ignore[no-untyped-def]
    """A triangular grid whose envelope, not its shape, reaches into the box is not
    selected (OGC API Features Part 1: intersection), in items, tiles and exports alike."""
    import mapbox_vector_tile

    from layers.exchange.export import export_layer
    from tests.support.map_planted import grid_square

    engine = client.app.state.engine
    plant(engine)
    x0, y0, x1, y1 = grid_square(5)
    with engine.begin() as conn:  # grid 6 becomes its south-west half
        conn.execute(text("UPDATE unit_grid SET geom = ST_Multi(ST_GeomFromText(:w, 4326)) "
                          "WHERE code = :c AND gen_to IS NULL"),
                     {"w": f"POLYGON(({x0} {y0}, {x1} {y0}, {x0} {y1}, {x0} {y0}))",
                      "c": GRID_CODES[5]})
    corner = (x1 - (x1 - x0) * 0.2, y1 - (y1 - y0) * 0.2, x1 + 0.0001, y1 + 0.0001)
    box = ",".join(str(v) for v in corner)
    found = client.get(f"/collections/grids/items?bbox={box}").json()
    assert GRID_CODES[5] not in [f["id"] for f in found["features"]]
    assert found["numberMatched"] == found["numberReturned"]
    # the same box with EPSG:4490's lat/lon axis order
    latlon = ",".join(str(v) for v in (corner[1], corner[0], corner[3], corner[2]))
    same = client.get("/collections/grids/items", params={
        "bbox": latlon, "bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/4490"}).json()
    assert [f["id"] for f in same["features"]] == [f["id"] for f in found["features"]]
    touching = ",".join(str(v) for v in (x0, y0, x0 + 0.0001, y0 + 0.0001))
    assert GRID_CODES[5] in [f["id"] for f in client.get(
        f"/collections/grids/items?bbox={touching}").json()["features"]]
    z = 16
    n = 2 ** z
    tx = int((x0 + 180) / 360 * n)
    ty = int((1 - math.asinh(math.tan(math.radians(y0))) / math.pi) / 2 * n)

    def codes(query: str = "") -> set[str]:
        r = client.get(f"/collections/grids/tiles/WebMercatorQuad/{z}/{tx}/{ty}{query}")
        assert r.status_code == 200, r.text
        layers = mapbox_vector_tile.decode(r.content) if r.content else {}
        return {f["properties"]["code"] for f in layers.get("grids", {}).get("features", [])}

    assert GRID_CODES[5] in codes()
    assert GRID_CODES[5] not in codes(f"?bbox={box}")
    out = tmp_path / "grids.geojson"
    export_layer(engine, "grids", out, bbox=corner)
    exported = json.loads(out.read_text())["features"]
    assert GRID_CODES[5] not in [f["properties"]["code"] for f in exported]


def test_items_in_cgcs2000_wgs84_and_web_mercator(client) -> None:  # type: ignore[no-untyped-def]
    """Part 2: CRS84 by default, EPSG:4326 and CGCS2000 in their lat/lon axis order, Web
    Mercator in metres; each answer says its CRS in Content-Crs; every collection lists
    them, CRS84 first."""
    plant(client.app.state.engine)
    code = GRID_CODES[0]
    plain = client.get(f"/collections/grids/items/{code}")
    assert plain.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    ring = plain.json()["geometry"]["coordinates"][0][0]
    for uri in ("http://www.opengis.net/def/crs/EPSG/0/4490",
                "http://www.opengis.net/def/crs/EPSG/0/4326"):
        r = client.get(f"/collections/grids/items/{code}", params={"crs": uri})
        assert r.headers["content-crs"] == f"<{uri}>"
        assert r.json()["geometry"]["coordinates"][0][0] == [[y, x] for x, y in ring]
        page = client.get("/collections/grids/items", params={"crs": uri, "limit": 1})
        assert page.headers["content-crs"] == f"<{uri}>"
        assert page.json()["features"][0]["geometry"]["coordinates"][0][0] == \
            [[y, x] for x, y in ring]
    merc = client.get(f"/collections/grids/items/{code}",
                      params={"crs": "http://www.opengis.net/def/crs/EPSG/0/3857"}).json()
    x, y = merc["geometry"]["coordinates"][0][0][0]
    assert 2_776_000 < x < 2_777_000 and 8_437_000 < y < 8_439_000
    described = client.get("/collections/grids").json()
    assert described["crs"][0] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert "http://www.opengis.net/def/crs/EPSG/0/4490" in described["crs"]
    assert described["storageCrs"] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    conforms = client.get("/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conforms


def test_queryables_are_linked_typed_and_enforced(client) -> None:  # type: ignore[no-untyped-def]
    """What ogctests' queryables tests ct2, ct3 and ct5 mean to check (they cannot run: see
    test_ogc_conformance.py): the items answer links its queryables in the Link header, the
    queryables document is a JSON schema of the filterable properties with their enums and
    patterns, and a queryable as a query parameter takes valid values (200) and refuses
    invalid ones (400)."""
    plant(client.app.state.engine)
    for collection in ("areas", "grids", "parts", "entities", "cases"):
        r = client.get(f"/collections/{collection}/items")
        header = r.headers["link"]
        assert 'rel="http://www.opengis.net/def/rel/ogc/1.0/queryables"' in header
        assert 'rel="self"; type="application/geo+json"' in header
        href = f"http://testserver/collections/{collection}/queryables"
        assert f"<{href}>" in header
        q = client.get(f"/collections/{collection}/queryables")
        assert q.headers["content-type"] == "application/schema+json"
        doc = q.json()
        assert doc["$id"] == href and doc["type"] == "object"
        assert doc["additionalProperties"] is False and doc["properties"]
        assert all("type" in p for p in doc["properties"].values())
    parts = client.get("/collections/parts/queryables").json()["properties"]
    assert parts["state"]["enum"] == ["intact", "damaged", "missing", "occupied"]
    assert parts["grid_code"]["pattern"] == r"^\d{15}$"
    ok = client.get("/collections/parts/items?state=damaged")
    assert ok.status_code == 200 and ok.json()["numberReturned"] == 1
    assert client.get("/collections/parts/items?state=[invalid-value]").status_code == 400
    assert client.get("/collections/grids/items?district_code=110101").json()[
        "numberReturned"] == 6
    assert client.get("/collections/grids/items?district_code=[x]").status_code == 400


def test_conformance_claims_only_what_is_served(client) -> None:  # type: ignore[no-untyped-def]
    conforms = set(client.get("/conformance").json()["conformsTo"])
    assert not any("ogcapi-tiles" in c for c in conforms)  # XYZ tiles, not {row}/{col}
    assert not any(c.endswith("/conf/filter") for c in conforms)  # no CQL2
    assert {"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
            "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
            "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables"} <= conforms
