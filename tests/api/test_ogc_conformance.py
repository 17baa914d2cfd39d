"""OGC API – Features conformance checked by an outside test suite: ``ogctests`` (PyPI, a
black-box verifier written by others) runs its ``features/core`` scope and the filtering
tests that apply to gridcore against one live server.

Filtering: gridcore claims Part 3's queryables and queryables-as-query-parameters, not CQL2
``filter`` (``test_filter.py`` does not apply). Of ogctests 0.1.15's queryables tests, ct1 and
ct4 (the conformance declarations) run here; ct2, ct3 and ct5 cannot pass against any server
that writes an RFC 8288 Link header: ct2 compares the ``rel`` with its quotes still on (a URI
must be quoted), ct3 reads the queryables URI from a key its header parser never fills and then
requests a list as a URL, and ct5 reads what ct3 stores. ``test_ogc_features.py`` checks what
they mean to check (the Link header, the queryables document, valid and invalid values).

ogctests pins its own dependencies (httpx < 0.28, pyarrow < 18, pytest < 9,
openapi-schema-validator < 0.7) below the project's, so ``scripts/install.sh --test`` gives
it its own environment, ``.venv-ogctests``, and it runs there as a separate process, as a
client would."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.support.data import REPO
from tests.support.map_planted import plant
from tests.support.thread_server import live_server

OGCTESTS = REPO / ".venv-ogctests" / "bin" / "python"
SCOPES = ("features/core", "features/filtering/test_queryables.py::test_ct1",
          "features/filtering/test_queryables_query_parameters.py::test_ct4")
RUN = """
import sys
from ogctests.main import run_ogctests
scopes, url, report = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
codes = [run_ogctests(scope, url, ["-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
                                    f"--junit-xml={report}.{i}.xml"])
         for i, scope in enumerate(scopes)]
sys.exit(max(codes))
"""


@pytest.fixture
def server(db: Engine) -> Iterator[str]:
    plant(db)
    with live_server(db) as url:
        yield url


def _failures(report: Path) -> list[str]:
    out = []
    for case in ET.parse(report).getroot().iter("testcase"):
        for bad in list(case.findall("failure")) + list(case.findall("error")):
            out.append(f"{case.get('name')}: {(bad.get('message') or '')[:300]}")
    return out


def test_ogctests_features_core_and_queryables_pass(server: str, tmp_path: Path) -> None:
    if not OGCTESTS.exists():
        # scripts/install.sh --test installs it: absent is a broken install, not a reason to skip
        pytest.fail(f"{OGCTESTS} is absent: scripts/install.sh --test installs ogctests in "
                    "its own environment")
    report = tmp_path / "ogctests"
    done = subprocess.run([str(OGCTESTS), "-c", RUN, ",".join(SCOPES), server, str(report)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    reports = sorted(tmp_path.glob("ogctests.*.xml"))
    assert len(reports) == len(SCOPES), done.stdout[-3000:] + done.stderr[-3000:]
    failures = [f for r in reports for f in _failures(r)]
    ran = sum(1 for r in reports for _ in ET.parse(r).getroot().iter("testcase"))
    assert not failures, "\n".join(failures)
    assert done.returncode == 0, done.stdout[-3000:]
    assert ran >= 28  # core's 26 abstract tests and the two conformance declarations
