"""Schemathesis against the OpenAPI spec, in production mode (issue 18: who may call what must
never turn into a 5xx): the shared part of tests/api/test_api_fuzz.py (an admin's token, valid and
invalid data) and tests/api/test_api_fuzz_roles.py (a token of every other role and anonymous
callers, valid data). Two files so that pytest-xdist runs them on two processes at once.

Bounded so the suite stays fast: ``MAX_EXAMPLES`` generated requests per operation for the
admin (valid and invalid data), one for each other caller (valid data: what differs for them
is who they are; tests/api/test_access_table.py checks every route by every caller's
expected answer), derandomised (the same examples every run), on a planted city with
one case. Operations that return HTML or images, and the live event stream
(open by design; its own tests), are skipped (``SKIP``); every other operation
of the spec is exercised, and the figures go to ``test-artifacts/api_fuzz_<callers>.json``.
A longer run: ``GRIDCORE_FUZZ_EXAMPLES=50``.
"""


from __future__ import annotations

import json
import os
import re
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from sqlalchemy import Engine

from api.app import create_app
from api.security.identity import issue_token
from gridcore.security.access import USER_ROLES, Role
from gridcore.settings import Settings
from layers.security.users import add_user
from tests.support.cases import GRID_001, INSIDE_001, plant

MAX_EXAMPLES = int(os.environ.get("GRIDCORE_FUZZ_EXAMPLES", "6"))  # a longer run: e.g. 50
# each caller but the admin: one example (two made the test ~25 % longer, 166 s in CI, for
# the same routes and the same refusals); a longer run: a third of MAX_EXAMPLES
OTHER_CALLERS_EXAMPLES = max(1, MAX_EXAMPLES // 3) if MAX_EXAMPLES > 6 else 1
# Pages and images; and the live event stream, which stays open by design (its own tests).
SKIP = re.compile(r"^GET (/map|/desk|/health/map|/health/choropleth\.png|/events)$")
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _seed(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/cases", headers=headers, json={
        "idempotency_key": "fuzz-seed", "category": "E0103", "lon": INSIDE_001[0],
        "lat": INSIDE_001[1], "description": "seed case for the API fuzz test"})
    assert response.status_code in (200, 201), response.text


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return " | ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {str(exc)[:700]}"


def _exercise(operation, label: str, client: TestClient, headers: dict[str, str],  # type: ignore[no-untyped-def]
              figures: dict[str, object], failures: list[str],
              mode: GenerationMode = GenerationMode.POSITIVE, examples: int = MAX_EXAMPLES
              ) -> None:
    # Negative data (values that break the schema) must be refused, never a 500.
    checks = CHECKS if mode is GenerationMode.POSITIVE else [not_a_server_error]

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate])  # no shrinking: report, move on
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:  # type: ignore[no-untyped-def]
        kwargs = case.as_transport_kwargs(headers=headers)
        kwargs.pop("base_url", None)
        url = kwargs.pop("url").replace("http://testserver", "")
        request = client.build_request(url=url, **kwargs)
        try:
            request.read()  # the body as it goes on the wire
        except (AttributeError, TypeError):
            # A multipart form field is text: a generated number cannot be sent as one (a
            # limit of the generator, no test of the server).
            reject()
        response = client.send(request)
        figures["examples"] += 1  # type: ignore[operator]
        statuses = figures["statuses"]  # type: ignore[index]
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
        case.validate_response(response, checks=checks)

    try:
        run()
    except Unsatisfiable:  # nothing to negate (no parameters, or only free strings)
        figures["no_negative_data"].append(label)  # type: ignore[attr-defined]
    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure
        failures.append(f"{label} ({mode.value}): {_describe(exc)}")


def _callers(db: Engine, tree: Settings) -> dict[str, dict[str, str]]:
    """A token of each role (the grid worker in a grid, the handler in a department), and
    the anonymous caller."""
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in sorted(USER_ROLES):
        name = f"fuzz-{role.value}"
        add_user(db, name, "correct horse battery", role.value,
                 department="D_GRID" if role is Role.DEPARTMENT_HANDLER else None,
                 areas=(GRID_001,) if role is Role.GRID_WORKER else ())
        token, _ = issue_token(tree.security, name, role.value, minutes=30)
        headers[role.value] = {"Authorization": f"Bearer {token}"}
    return headers


def fuzz(db: Engine, artifacts: Path, admin: bool) -> None:
    """Every operation of the spec by the admin (``admin``) or by every other caller."""
    plant(db)
    tree = Settings()
    tree.security = tree.security.model_copy(update={"env": "production"})
    app = create_app(tree, engine=db)
    with TestClient(app) as client:
        callers = _callers(db, tree)
        _seed(client, callers["admin"])
        if admin:
            callers = {"admin": callers["admin"]}
        else:
            callers.pop("admin")
        schema = schemathesis.openapi.from_dict(app.openapi())
        figures: dict[str, object] = {"operations": 0, "skipped": [], "examples": 0,
                                      "statuses": {}, "callers": list(callers),
                                      "no_negative_data": [], "failures": []}
        failures: list[str] = []

        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            if SKIP.match(label):
                figures["skipped"].append(label)  # type: ignore[attr-defined]
                continue
            figures["operations"] += 1  # type: ignore[operator]
            for caller, headers in callers.items():
                if caller == "admin":
                    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                        _exercise(operation, f"{label} as {caller}", client, headers,
                                  figures, failures, mode)
                else:
                    _exercise(operation, f"{label} as {caller}", client, headers, figures,
                              failures, examples=OTHER_CALLERS_EXAMPLES)

        figures["failures"] = failures
        name = "api_fuzz_admin.json" if admin else "api_fuzz_roles.json"
        (artifacts / name).write_text(json.dumps(figures, indent=2, ensure_ascii=False))
        print(json.dumps({k: v for k, v in figures.items() if k != "failures"}))
        operations, examples = figures["operations"], figures["examples"]
        assert isinstance(operations, int) and isinstance(examples, int)
        assert operations > 50 and examples > operations, figures  # it did exercise the spec
        assert not failures, "\n\n".join(failures)
