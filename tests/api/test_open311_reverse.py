"""An Open311 request reported by its point alone shows the nearest address of the address layer
as its address_string — flagged as derived, with its distance — when one lies within
GRIDCORE_OPEN311_REVERSE_GEOCODE_M; farther, or given an address, nothing is made up."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.test_levels import api, city  # the planted city with its address layer

__all__ = ["api", "city"]

FORM = {"api_key": "k-test", "service_code": "E0103", "description": "路面有油污"}


def _post(api: TestClient, **form: str) -> int:
    r = api.post("/open311/v2/requests.json", data={**FORM, **form})
    assert r.status_code == 201, r.text
    return int(r.json()[0]["service_request_id"])


def test_point_only_request_gets_the_nearest_address_flagged(api: TestClient) -> None:
    near = _post(api, lat="39.90205", long="116.40803")  # ≈ 6 m from 多福巷30号
    far = _post(api, lat="39.9001", long="116.4099")  # ≈ 266 m from the nearest address
    given = _post(api, lat="39.90205", long="116.40803", address_string="多福巷30号门口",
                  email="b@example.org")
    one = api.get(f"/open311/v2/requests/{near}.json", params={"api_key": "k-test"})
    assert one.status_code == 200, one.text
    item = one.json()[0]
    assert item["address"] == "多福巷 30号"  # the address layer's label
    assert item["extended_attributes"]["address_derived"] is True
    assert 0 < item["extended_attributes"]["address_distance_m"] < 15
    listed = api.get("/open311/v2/requests.json", params={
        "api_key": "k-test", "service_request_id": f"{near},{far},{given}"}).json()
    by_id = {int(i["service_request_id"]): i for i in listed}
    assert by_id[near]["address"] == "多福巷 30号"
    assert by_id[far]["address"] == "" and "address_derived" not in \
        by_id[far]["extended_attributes"]
    assert by_id[given]["address"] == "多福巷30号门口"
    assert "address_derived" not in by_id[given]["extended_attributes"]
