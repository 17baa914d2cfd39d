"""Cases this process is filing but has not committed yet, for the duplicate search of the reports
filed meanwhile (重复事件 candidates that the database cannot show yet).

Intake reads the open cases around a report, works out its case, and writes it some
milliseconds later (``layers.cases.intake``). Reports of the same group are worked out one after the
other before the one write, and the process's next group reads while this one writes
(``api.intake_groups``): neither can find these cases in the database. So each case is listed
here, with the id its report's read reserved, as soon as it is worked out, and taken off once its
write has committed (or failed); a report then adds the listed cases around it to what the
database found.

Reports filed in the same few milliseconds by another process still miss each other: a case
shows there only once it is committed.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable
from typing import Any

from pyproj import Geod
from sqlalchemy import Engine

# the same ellipsoid as PostGIS's geography distance in the database's nearby search
_GEOD = Geod(ellps="WGS84")


class Unwritten:
    """Worked-out cases of one database not committed yet, by id: each a row like the nearby
    search's (``id``, ``category_key``, ``description``, ``part_code``, ``at`` in epoch
    seconds) plus its ``lon`` and ``lat``."""

    def __init__(self) -> None:
        self._cases: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()  # intake threads add and take off; readers copy

    def __len__(self) -> int:
        return len(self._cases)

    def add(self, case: dict[str, Any]) -> None:
        with self._lock:
            self._cases[case["id"]] = case

    def discard(self, ids: Iterable[int]) -> None:
        with self._lock:
            for case_id in ids:
                self._cases.pop(case_id, None)

    def around(self, lon: float, lat: float, radius_m: float, box: dict[str, float],
               known: Iterable[int] = ()) -> list[dict[str, Any]]:
        """The listed cases within ``radius_m`` of the point, with their distance ``d`` in
        metres, except those in ``known`` (the database found them: committed meanwhile).
        ``box`` is the search's half width and height in degrees (``dx``, ``dy``)."""
        with self._lock:
            cases = list(self._cases.values())
        if not cases:
            return []
        skip = set(known)
        found = []
        for case in cases:
            if (case["id"] in skip or abs(case["lon"] - lon) > box["dx"]
                    or abs(case["lat"] - lat) > box["dy"]):
                continue
            d = _GEOD.inv(lon, lat, case["lon"], case["lat"])[2]
            if d <= radius_m:
                found.append({**case, "d": d})
        found.sort(key=lambda case: case["d"])
        return found


_BY_ENGINE: weakref.WeakKeyDictionary[Engine, Unwritten] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def unwritten(engine: Engine) -> Unwritten:
    """The unwritten cases of ``engine``'s database in this process."""
    found = _BY_ENGINE.get(engine)  # made once per engine: the lock only guards the making
    if found is not None:
        return found
    with _GUARD:
        found = _BY_ENGINE.get(engine)
        if found is None:
            found = _BY_ENGINE[engine] = Unwritten()
        return found
