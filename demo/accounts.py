"""Sign-in accounts of the demo city, one per role, so that the phone app (``/m/``) and the
map can be tried with real sign-ins: synthetic people, a published password, and therefore
**only in development mode** (``GRIDCORE_ENV=development``, which ``scripts/run.sh`` sets).

Idempotent: an account that exists is left as it is.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from layers.security.users import add_user, get_user

PASSWORD = "gridcore-demo"


def _first_community(engine: Engine, district: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT community_code FROM unit_grid WHERE gen_to IS NULL AND code LIKE :d "
            "ORDER BY code LIMIT 1"), {"d": f"{district}%"}).scalar()


def _busiest_department(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT department_code FROM case_record WHERE department_code IS NOT NULL "
            "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")).scalar()


def ensure_accounts(engine: Engine, district: str, development: bool) -> list[str]:
    """Create the demo's accounts if missing; the lines to print."""
    if not development:
        return ["no demo sign-in accounts (they have a published password): outside "
                "development mode add users with `gridcore users add`"]
    community = _first_community(engine, district)
    department = _busiest_department(engine)
    wanted = [("wangfang", "grid_worker", None, (community,) if community else (), "王芳"),
              ("handler", "department_handler", department, (), "处置员"),
              ("dispatcher", "dispatcher", None, (), "派遣员"),
              ("manager", "manager", None, (), "值班领导"),
              ("admin", "admin", None, (), "管理员")]
    lines = []
    for name, role, dept, areas, display in wanted:
        if role == "grid_worker" and not areas or role == "department_handler" and not dept:
            continue
        if get_user(engine, name) is None:
            # the demo's register has one worker per community, coded W + community
            worker = f"W{community}" if role == "grid_worker" else None
            add_user(engine, name, PASSWORD, role, dept, areas, display, actor="demo",
                     worker_code=worker)
        where = f" areas {','.join(areas)}" if areas else (f" department {dept}" if dept
                                                           else "")
        lines.append(f"  {name} ({role}{where})")
    return [f"sign-in accounts (password {PASSWORD!r}, development only):", *lines]
