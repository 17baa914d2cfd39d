"""notebooks/01_resolve_reports.ipynb runs end to end against the test database."""

from __future__ import annotations

import re

from tests.support.data import REPO, shared_file


def test_resolve_reports_notebook_runs(db, cli_env, artifacts) -> None:  # type: ignore[no-untyped-def]
    import nbclient
    import nbformat
    shared_file("san_francisco/sf311_cases_sample.csv")
    path = REPO / "notebooks" / "01_resolve_reports.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "4,984 requests, 4,984 inside a grid" in text and "100.00%" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    # it worked in a scratch database of its own and dropped it: the test database is untouched
    assert "working in the scratch database gridcore_nb_sf_" in text and "dropped" in text
    from sqlalchemy import text as sql

    with db.connect() as conn:
        assert conn.execute(sql("SELECT count(*) FROM unit_grid")).scalar_one() == 0
        scratch = re.search(r"gridcore_nb_sf_[0-9a-f]+", text).group(0)
        assert conn.execute(sql("SELECT count(*) FROM pg_database WHERE datname = :d"),
                            {"d": scratch}).scalar_one() == 0
    nbformat.write(nb, artifacts / "01_resolve_reports.executed.ipynb")
