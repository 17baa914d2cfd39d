"""The part tiles' cell counts (``part_cell``, migration 0022) of a bulk import's new parts,
computed from the arrays the import already holds.

Why not the insert trigger: on a COPY of millions of parts the statement trigger re-reads
every new row from its transition table and parses each stored cell in SQL (figures in
``benchmarks/README.md``, tiles4). The bulk lane already holds the table exclusively and
rebuilds its indexes, so it turns that one trigger off for its COPY and appends the same
counts itself — from H3 integers (bit arithmetic on numpy arrays), grouped by pandas — in the
same transaction. ``layers/ogc/part_cells.py`` reads, checks and rebuilds them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from layers.db.bulk import copy_table

LEVELS = (7, 9)  # the stored levels: hexagons of resolutions 4–7 and 8–9 are ranges of them
INSERT_TRIGGER = "city_part_cells_ins"


def cell_counts(cells: np.ndarray, classes: np.ndarray, states: np.ndarray) -> pd.DataFrame:
    """Rows (res, cell, class_code, state, parts) of parts at H3 ``cells`` (uint64, the
    stored cell of each part): per level, the parts whose cell is at least that fine."""
    cells = np.asarray(cells, dtype=np.uint64)
    res = (cells >> np.uint64(52)) & np.uint64(15)
    # grouping small integers is several times faster than grouping Python strings
    class_no, class_names = pd.factorize(np.asarray(classes, dtype=object))
    state_no, state_names = pd.factorize(np.asarray(states, dtype=object))
    frames = []
    for level in LEVELS:
        keep = res >= np.uint64(level)
        clear = np.uint64(~(0xF << 52) & ((1 << 64) - 1))
        parent = (cells[keep] & clear) | np.uint64((level << 52) | ((1 << (3 * (15 - level))) - 1))
        counted = pd.DataFrame({"cell": parent.view(np.int64), "c": class_no[keep],
                                "s": state_no[keep]}).groupby(
            ["cell", "c", "s"], sort=False).size().reset_index(name="parts")
        frames.append(pd.DataFrame({
            "res": level, "cell": counted["cell"].to_numpy(),
            "class_code": np.asarray(class_names, dtype=object)[counted["c"].to_numpy()],
            "state": np.asarray(state_names, dtype=object)[counted["s"].to_numpy()],
            "parts": counted["parts"].to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def append_counts(conn: Connection, counts: pd.DataFrame) -> None:
    """COPY the rows into ``part_cell`` (same transaction as ``conn``), in (res, cell) order
    so that its index grows at its right edge (binary COPY: a CSV of millions of counts
    cost more to write than to count)."""
    if counts.empty:
        return
    counts = counts.sort_values(["res", "cell"], kind="stable")
    copy_table(conn, "part_cell", {
        "res": counts["res"].to_numpy(dtype=np.int64),
        "cell": counts["cell"].to_numpy(dtype=np.int64),
        "class_code": counts["class_code"].to_numpy(dtype=object),
        "state": counts["state"].to_numpy(dtype=object),
        "parts": counts["parts"].to_numpy(dtype=np.int64)}, label="part cells")


@contextlib.contextmanager
def without_insert_trigger(conn: Connection) -> Iterator[None]:
    """The body runs with the part cells' insert trigger dropped; it comes back after, from its
    own definition (the bulk lane only: it holds the table exclusively, and the drop and the
    re-creation are part of its transaction, so a failed load leaves the trigger as it was).

    Dropped, not disabled: PostgreSQL keeps the transition table of a statement trigger
    (``REFERENCING NEW TABLE``) for every row an INSERT or COPY writes whether the trigger is
    enabled or not (``MakeTransitionCaptureState`` reads the table's trigger definitions, not
    their enabled state), so with the trigger merely disabled the COPY still wrote each new part
    a second time, into a tuplestore spilled to temporary files: 182 MB of temporary file per
    million parts, about 1.8 GB at 10 M (benchmarks/README.md, session 11)."""
    found = conn.execute(text(
        "SELECT pg_get_triggerdef(t.oid), t.tgenabled FROM pg_trigger t "
        "WHERE t.tgrelid = 'city_part'::regclass AND t.tgname = :n"),
        {"n": INSERT_TRIGGER}).first()
    if found is None:  # nothing to suspend (a schema without it)
        yield
        return
    definition, enabled = found
    conn.execute(text(f"DROP TRIGGER {INSERT_TRIGGER} ON city_part"))
    yield
    conn.execute(text(definition))
    if enabled == "D":  # it was disabled before the load: it stays so
        conn.execute(text(f"ALTER TABLE city_part DISABLE TRIGGER {INSERT_TRIGGER}"))
