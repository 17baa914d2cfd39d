"""The parts (部件) and 9+X inventory per key for city health: counts only, the state *now*
(the same for every window), so a whole level's counts are cached until the parts, entities or
grids layer changes (their versions bump inside the writing transaction)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, text

from layers.health.queries import check_level, fill, filters_for, sql_text

_INVENTORY: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()


def _key(conn: Connection, level: str, part_classes: list[str]) -> tuple:
    versions = tuple(conn.execute(text(
        "SELECT layer, version FROM layer_version WHERE layer IN "
        "('parts', 'entities', 'grids') ORDER BY layer")).all())
    return (str(conn.engine.url), level, tuple(part_classes), versions)


def cached(conn: Connection, level: str, part_classes: list[str]) -> dict[str, np.ndarray] | None:
    """A whole level's inventory if it is cached and current, else None."""
    return _INVENTORY.get(_key(conn, level, part_classes))


def inventory_on(engine: Engine, level: str, part_classes: list[str], keys: list[str],
                 params: dict[str, Any]) -> dict[str, np.ndarray]:
    with engine.connect() as conn:
        return inventory(conn, level, None, part_classes, keys, params)


def inventory(conn: Connection, level: str, code: str | None, part_classes: list[str],
              keys: list[str], params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Parts and 9+X counts per key. They are the inventory *now*, the same for every window,
    so a whole level's counts are kept until the parts, entities or grids layer changes."""
    n = check_level(level)
    cache_key = None
    if code is None:
        cache_key = _key(conn, level, part_classes)
        if cache_key in _INVENTORY:
            _INVENTORY.move_to_end(cache_key)
            return _INVENTORY[cache_key]
    filters = filters_for(n, code)
    pos = {k: i for i, k in enumerate(keys)}
    cols: dict[str, np.ndarray] = {}
    classes = "".join(f", count(*) FILTER (WHERE class_code = '{c}') AS \"parts_{c}\", "
                      f"count(*) FILTER (WHERE class_code = '{c}' AND state IN "
                      f"('damaged', 'missing')) AS \"parts_bad_{c}\"" for c in part_classes)
    fill(cols, pos, len(keys), conn.execute(
        text(sql_text("parts").format(classes=classes, **filters)), params))
    for key, area_name, count in conn.execute(text(sql_text("entities").format(**filters)), params):
        if key in pos:
            cols.setdefault("entities", np.zeros(len(keys)))[pos[key]] += count
            cols.setdefault(f"entities_{area_name}", np.zeros(len(keys)))[pos[key]] = count
    if cache_key is not None:
        _INVENTORY[cache_key] = cols
        while len(_INVENTORY) > 8:
            _INVENTORY.popitem(last=False)
    return cols
