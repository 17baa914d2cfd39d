"""A ``gridcore.access.Scope`` as a SQL condition, so scoping is enforced in the query.

Area codes nest by prefix, so "inside the scope" is ``grid_code LIKE ANY(prefixes || '%')``;
the prefixes are bound parameters (digits only, validated when the user was made), never
string-built SQL.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, literal, or_, true
from sqlalchemy.sql.elements import ColumnClause

from gridcore.access import Scope


def grid_condition(grid_column: ColumnElement | ColumnClause, scope: Scope) -> ColumnElement:
    """Rows whose grid code lies inside ``scope``'s areas (city-wide: every row)."""
    if scope.city_wide:
        return true()
    if not scope.area_prefixes:
        return false()
    # Prefixes are digits only (validated on entry), so no LIKE wildcard can slip in.
    return or_(*(grid_column.like(p + "%") for p in scope.area_prefixes))


def case_condition(grid_column: ColumnElement | ColumnClause,
                   department_column: ColumnElement | ColumnClause | None,
                   scope: Scope) -> ColumnElement:
    """Cases in the scope's areas, or dispatched to the scope's department."""
    by_area = grid_condition(grid_column, scope)
    if scope.city_wide or scope.department is None or department_column is None:
        return by_area
    return or_(by_area, department_column == literal(scope.department))
