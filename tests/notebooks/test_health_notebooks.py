"""The analysts' notebooks 02 (grid health) and 03 (city parts) run end to end with nbclient
against the test database (GRIDCORE_DATABASE_URL), on the planted city; no network."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from sqlalchemy import Engine, text

from tests.support.data import REPO
from tests.support.health_planting import G2, G3, PREVIOUS, WINDOW, plant_city, plant_history

NOTEBOOKS = REPO / "notebooks"


def _run(name: str) -> nbformat.NotebookNode:
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(book, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return book


def _figures(book: nbformat.NotebookNode) -> int:
    """Figures shown inline (the analyst sees them in Jupyter; headless they are PNG data)."""
    return sum("image/png" in o.get("data", {}) for cell in book.cells
               for o in cell.get("outputs", []))


def _text(book: nbformat.NotebookNode) -> str:
    out = []
    for cell in book.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


@pytest.fixture
def planted_env(db: Engine, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Engine:
    plant_city(db)
    plant_history(db)
    with db.begin() as conn:  # a damaged-parts hot spot away from the others, in G3
        for i, (x, state) in enumerate([(120.6121, "damaged"), (120.6122, "missing"),
                                        (120.6123, "damaged"), (120.6149, "intact")]):
            conn.execute(text(
                "INSERT INTO city_part (code, class_code, state, grid_code, geom) VALUES "
                "(:c, '0103', :s, :g, ST_SetSRID(ST_MakePoint(:x, 31.3021), 4326))"),
                {"c": f"3205080103{900 + i:06d}", "s": state, "g": G3, "x": x})
    monkeypatch.setenv("GRIDCORE_NB_WINDOW", WINDOW)
    monkeypatch.setenv("GRIDCORE_NB_PREVIOUS", PREVIOUS)
    return db


def test_notebook_02_grid_health(planted_env: Engine) -> None:
    book = _run("02_grid_health.ipynb")
    out = _text(book)
    assert "3 grids; 7 cases in" in out  # A–G (F voided included), not H (after), P (before)
    assert "cityscape_density" in out and G2 in out
    assert _figures(book) >= 1


def test_notebook_03_city_parts(planted_env: Engine) -> None:
    book = _run("03_city_parts.ipynb")
    out = _text(book)
    assert "10 parts in 3 grids" in out
    # the top cell holds the 3 bad parts planted together in G3
    assert "with 3 bad parts" in out
    assert _figures(book) >= 1
