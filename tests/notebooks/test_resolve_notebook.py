"""notebooks/01_resolve_reports.ipynb runs end to end against the test database."""

from __future__ import annotations

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
    nbformat.write(nb, artifacts / "01_resolve_reports.executed.ipynb")
