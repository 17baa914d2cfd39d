"""City-part codes for rows that have none (编码): district + class + serial, vectorised.

A million generated codes cost no Python object per row: prefixes are integer ids, serials
running numbers per prefix in file order, and the codes (made by ``gridcore.codes``) 16 ASCII
bytes per row in one Arrow buffer. Also here: the grid-then-code order a bulk load writes its
rows in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text

from gridcore.codes import (
    PART_PREFIX_LENGTH,
    PART_SERIAL_MAX,
    AreaLevel,
    is_area_code,
    make_part_codes,
    part_prefix,
)
from layers.exchange.imports.report import Problems, reject_file


def report_rows(problems: Problems, mask: np.ndarray, field_name: str,
                reason: Callable[[int], str]) -> None:
    """One problem per flagged row (1-based row numbers), the first 1000."""
    for i in np.flatnonzero(mask)[:1000]:
        problems.add(int(i) + 1, field_name, reason(int(i)))


def as_arrow_strings(values: object) -> pa.Array:
    return values if isinstance(values, pa.Array) else pa.array(
        np.asarray(values, dtype=object), pa.string(), from_pandas=True)


def grid_then_code_order(grid_idx: np.ndarray, codes: object) -> np.ndarray:
    """Rows by grid code (no grid last), then code: the order a bulk load writes them in. The
    rebuilt primary-key, class and grid indexes then read almost sorted input and build faster
    (benchmarks/README.md, "Design figures"), and the parts of a grid sit together
    on disk, where a map or grid query reads them. Integer keys only: grid indices follow the
    locator's sorted codes, and a city-part code is 16 digits, an int64."""
    code_key = pc.cast(as_arrow_strings(codes), pa.int64()).to_numpy(zero_copy_only=False)
    by_code = np.argsort(code_key)
    grid_key = np.where(grid_idx < 0, grid_idx.max() + 1, grid_idx)[by_code]
    return by_code[np.argsort(grid_key.astype(np.int32), kind="stable")]


def district_prefixes(district: str | None, grid_names: np.ndarray, grid_idx: np.ndarray,
                       classes: pd.Series, todo: np.ndarray, problems: Problems,
                       field_name: str) -> tuple[list[str], np.ndarray]:
    """district + class (10 characters) of every row still needing a code, as the distinct
    prefixes and each row's index into them (integers all the way: no string per row). A
    part's district is its grid's; ``district`` applies only to parts in no grid."""
    if district is not None and not is_area_code(district, AreaLevel.DISTRICT):
        problems.add(None, "district", f"district {district!r} must be 6 digits")
        return [], np.empty(0, dtype=np.int64)
    outside = todo & (grid_idx < 0)
    if district is None:
        report_rows(problems, outside, field_name, lambda i: (
            "no code in the file and the point lies in no unit grid (nor within the snap "
            "distance of one), so its district is unknown: give --district"))
        if outside.any():
            return [], np.empty(0, dtype=np.int64)
    grid_district, districts = pd.factorize(pd.Series(grid_names, dtype=object).str[:6])
    districts = list(districts)
    if district is not None and district not in districts:
        districts.append(district)
    lookup = np.append(grid_district, districts.index(district) if district is not None
                       else -1).astype(np.int64)
    row_district = lookup[grid_idx[todo]]  # grid_idx −1 takes the last entry: --district
    row_class, class_codes = pd.factorize(classes.to_numpy(dtype=object)[todo])
    keys, inverse = np.unique(row_district * len(class_codes) + row_class, return_inverse=True)
    uniques = [part_prefix(districts[k // len(class_codes)], class_codes[k % len(class_codes)])
               for k in keys.tolist()]
    return uniques, inverse.reshape(-1)


def next_codes(conn, prefixes: list[str], inverse: np.ndarray,  # noqa: ANN001
                given_codes: pd.Series) -> pa.Array:
    """Per row: its prefix (``prefixes[inverse]``) + a serial continuing after the largest
    stored (or given) one for that prefix, in file order."""
    stored = dict(conn.execute(text(
        "SELECT left(code, 10), max(right(code, 6)::int) FROM city_part "
        "WHERE left(code, 10) = ANY(:p) GROUP BY 1"), {"p": prefixes}).all())
    for code in given_codes:
        prefix = code[:PART_PREFIX_LENGTH]
        stored[prefix] = max(stored.get(prefix, 0), int(code[PART_PREFIX_LENGTH:]))
    base = np.array([stored.get(p, 0) for p in prefixes], dtype=np.int64)[inverse]
    # running number within each prefix, in file order
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=len(prefixes))
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.empty(len(inverse), dtype=np.int64)
    rank[order] = np.arange(len(inverse)) - starts
    serial = base + rank + 1
    if (serial > PART_SERIAL_MAX).any():
        raise reject_file("parts", f"more than {PART_SERIAL_MAX} city parts of one class in one "
                                   f"district ({prefixes[inverse[serial > PART_SERIAL_MAX][0]]})",
                          "code")
    out = make_part_codes(prefixes, inverse, serial)
    n = len(inverse)
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(out.tobytes())])
