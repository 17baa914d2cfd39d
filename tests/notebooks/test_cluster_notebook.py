"""notebooks/04_cases_on_a_cluster.ipynb runs end to end against the test database: a small
synthetic megacity, its GeoParquet export, resolve and aggregation on a two-worker cluster."""

from __future__ import annotations

from tests.support.data import REPO


def test_cases_on_a_cluster_notebook_runs(db, cli_env, artifacts) -> None:  # type: ignore[no-untyped-def]
    import nbclient
    import nbformat

    path = REPO / "notebooks" / "04_cases_on_a_cluster.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "generating a small synthetic megacity" in text
    assert "2 workers; 12 months" in text
    assert "cases resolved on the workers; 0 lie in another grid" in text
    assert "% closed" in text and "top cell" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)
    nbformat.write(nb, artifacts / "04_cases_on_a_cluster.executed.ipynb")
