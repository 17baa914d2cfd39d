"""A ``gridcore.security.access.Scope`` as a SQL condition, so scoping is enforced in the query.

Area codes nest by prefix, so "inside the scope" is ``grid_code LIKE ANY(prefixes || '%')``;
the prefixes are bound parameters (digits only, validated when the user was made), never
string-built SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Engine, false, or_, text, true
from sqlalchemy.sql.elements import ColumnClause

from gridcore.coordination import PARTY_STEPS
from gridcore.errors import Forbidden
from gridcore.security.access import Principal, Scope
from layers.db.partitions import report_time


def grid_condition(grid_column: ColumnElement | ColumnClause, scope: Scope) -> ColumnElement:
    """Rows whose grid code lies inside ``scope``'s areas (city-wide: every row)."""
    if scope.city_wide:
        return true()
    if not scope.area_prefixes:
        return false()
    # Prefixes are digits only (validated on entry), so no LIKE wildcard can slip in.
    return or_(*(grid_column.like(p + "%") for p in scope.area_prefixes))


def case_scope_sql(scope: Scope, params: dict[str, Any], alias: str = "c") -> str:
    """The scope as a text-SQL condition on ``case_record`` (for queries built as text);
    values go into ``params``, never into the SQL string."""
    if scope.city_wide:
        return "TRUE"
    parts = []
    for i, prefix in enumerate(scope.area_prefixes):
        params[f"scope_area_{i}"] = prefix + "%"
        parts.append(f"{alias}.grid_code LIKE :scope_area_{i}")
    if scope.department:
        params["scope_department"] = scope.department
        parts.append(f"{alias}.department_code = :scope_department")
    if scope.user:  # the cases the user filed, wherever they lie
        params["scope_user"] = scope.user
        parts.append(f"{alias}.filed_by = :scope_user")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


def case_in_scope(engine: Engine, case_id: int, principal: Principal | None,
                  action: str = "case.act", step: str | None = None) -> None:
    """Before an action on a case: 403 when it lies outside the caller's scope. A missing
    case is left to the action itself (its 404). A department that is a party beside the lead
    (assisting, whistled) reads and discusses the case and takes its own steps (``step`` in
    ``PARTY_STEPS``), not the lead's."""
    if principal is None:
        return
    principal.require(action)
    with engine.connect() as conn:
        at = report_time(conn, case_id)  # planned on the case's own year
        row = None if at is None else conn.execute(text(
            "SELECT grid_code, department_code FROM case_record "
            "WHERE id = :i AND created_at = :at"), {"i": case_id, "at": at}).first()
    # Acting stays inside the areas: having filed a case elsewhere lets one read it, not act.
    if row is not None and not principal.scope.covers_case(row.grid_code,
                                                           row.department_code) \
            and not ((step is None or step in PARTY_STEPS)
                     and party_to(engine, case_id, principal.scope.department)):
        raise Forbidden(f"case {case_id} lies outside your areas", case_id=case_id,
                        action=action)


def party_to(engine: Engine, case_id: int, department: str | None) -> bool:
    """Is ``department`` a party to the case beside its lead: an assisting department (协同)
    or one a whistle called (吹哨)? Such a party acts on its own task and reads the case."""
    if department is None:
        return False
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT EXISTS (SELECT 1 FROM case_task WHERE case_id = :c AND department_code = :d)"
            " OR EXISTS (SELECT 1 FROM case_whistle WHERE case_id = :c "
            "AND department_code = :d)"), {"c": case_id, "d": department}).scalar() is True
