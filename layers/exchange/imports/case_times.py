"""Times of a legacy case file → UTC instants, vectorised, every assumption counted.

A value with an offset (``2015-03-01T08:00:00+08:00``) keeps it; a value without one is local
time of the file's time zone (``--timezone``, default the city's). Formats: ``--time-format``
(strftime, e.g. ``%m/%d/%Y - %I:%M%p``) when given; otherwise ISO 8601, or else the one format
pandas infers from the first value (``2020/1/6 12:09:38``). A value that does not parse is a
row error. Local times that a daylight-saving change makes ambiguous (the repeated hour) are
taken as standard time and those it skips are moved forward; the summary says how many.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from layers.exchange.imports.report import Problems


@dataclass
class Times:
    utc: pd.Series  # datetime64[ns, UTC]; NaT where empty
    notes: list[str] = field(default_factory=list)


def _parse(values: pd.Series, fmt: str | None) -> pd.Series:
    if fmt:
        return pd.to_datetime(values, format=fmt, errors="coerce")
    best = pd.to_datetime(values, format="ISO8601", errors="coerce")
    if best.isna().any():
        import warnings

        with warnings.catch_warnings():  # "could not infer format": the count below says it
            warnings.simplefilter("ignore", UserWarning)
            inferred = pd.to_datetime(values, errors="coerce")
        if inferred.isna().sum() < best.isna().sum():
            best = inferred
    return best


def parse_times(values: pd.Series, column: str, timezone: str, fmt: str | None,
                problems: Problems, required: bool) -> Times:
    """``values``: stripped text ('' = no time). Row problems for values that do not parse
    (and for empty ones when ``required``)."""
    notes: list[str] = []
    given = (values != "").to_numpy()
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    if required:
        for i in np.flatnonzero(~given)[:1000]:
            problems.add(int(i) + 1, column, "empty: every case needs this time")
    if not given.any():
        return Times(out, notes)
    parsed = _parse(values[given], fmt)
    bad = parsed.isna().to_numpy()
    rows = np.flatnonzero(given)
    for i in rows[bad][:1000]:
        hint = f" (format {fmt})" if fmt else " (give --time-format, e.g. '%m/%d/%Y %H:%M')"
        problems.add(int(i) + 1, column, f"{values.iat[int(i)]!r} is not a time{hint}")
    if bad.any():
        return Times(out, notes)
    if getattr(parsed.dt, "tz", None) is not None:
        out[given] = parsed.dt.tz_convert("UTC")
        return Times(out, notes)
    if parsed.dtype == object:  # mixed offsets: pandas gives objects; UTC makes them one
        out[given] = pd.to_datetime(parsed, utc=True)
        return Times(out, notes)
    strict = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
    odd = strict.isna().to_numpy()
    if odd.any():
        lenient = parsed.dt.tz_localize(timezone, ambiguous=np.zeros(len(parsed), dtype=bool),
                                        nonexistent="shift_forward")
        strict = strict.where(~odd, lenient)
        notes.append(f"{int(odd.sum())} {column} times fall in a daylight-saving change of "
                     f"{timezone}: the repeated hour taken as standard time, the skipped hour "
                     "moved forward")
    out[given] = strict.dt.tz_convert("UTC")
    return Times(out, notes)

