"""Teams (班组) of a department: a handler belongs to at most one team; its leader assigns the
department's cases to the team's members (the lifecycle's assign step, 指派)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from gridcore.errors import Conflict, NotFound, ValidationError
from layers.security import audit

_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def add_team(engine: Engine, code: str, department: str, name: str = "",
             actor: str = "cli") -> dict[str, Any]:
    if not _CODE.match(code):
        raise ValidationError(f"team code {code!r}: 1–40 letters, digits, '_', '.', '-'",
                              field="code", value=code)
    with engine.begin() as conn:
        if conn.execute(text("SELECT 1 FROM department WHERE code = :d"),
                        {"d": department}).first() is None:
            raise ValidationError(f"department {department!r} does not exist",
                                  field="department", value=department)
        try:
            with conn.begin_nested():
                conn.execute(text("INSERT INTO team (code, department_code, name) "
                                  "VALUES (:c, :d, :n)"), {"c": code, "d": department,
                                                           "n": name})
        except IntegrityError:
            raise Conflict(f"team {code!r} exists already", field="code", value=code) from None
        audit.record(conn, actor, "team.add", f"team:{code}", {"department": department})
    return {"code": code, "department": department, "name": name, "members": []}


def join_team(engine: Engine, username: str, team: str | None, leader: bool = False,
              actor: str = "cli") -> None:
    """Put a department handler in a team (``None``: out of any team), as its leader or not."""
    with engine.begin() as conn:
        user = conn.execute(text("SELECT role, department_code FROM app_user "
                                 "WHERE username = :u"), {"u": username}).first()
        if user is None:
            raise NotFound(f"no user {username!r}", username=username)
        if team is not None:
            found = conn.execute(text("SELECT department_code FROM team WHERE code = :t"),
                                 {"t": team}).first()
            if found is None:
                raise NotFound(f"no team {team!r}", team=team)
            if user.role != "department_handler" or user.department_code != found[0]:
                raise ValidationError(f"{username} is not a handler of department {found[0]}, "
                                      f"which team {team} belongs to", field="team",
                                      value=team)
        conn.execute(text("UPDATE app_user SET team_code = :t, team_leader = :l, "
                          "updated_at = now() WHERE username = :u"),
                     {"t": team, "l": bool(team and leader), "u": username})
        audit.record(conn, actor, "team.join", f"user:{username}",
                     {"team": team, "leader": bool(team and leader)})


def list_teams(engine: Engine, department: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        teams = [dict(r) for r in conn.execute(text(
            "SELECT code, department_code AS department, name FROM team "
            "WHERE :d IS NULL OR department_code = :d ORDER BY code"),
            {"d": department}).mappings()]
        members = conn.execute(text(
            "SELECT team_code, username, display_name, team_leader, disabled FROM app_user "
            "WHERE team_code = ANY(:t) ORDER BY team_leader DESC, username"),
            {"t": [t["code"] for t in teams]}).mappings().all()
    for t in teams:
        t["members"] = [{"username": m["username"], "display_name": m["display_name"],
                         "leader": m["team_leader"], "disabled": m["disabled"]}
                        for m in members if m["team_code"] == t["code"]]
    return teams


def team_of(engine: Engine, username: str) -> dict[str, Any] | None:
    """The user's team with its members, or None."""
    with engine.connect() as conn:
        code = conn.execute(text("SELECT team_code FROM app_user WHERE username = :u"),
                            {"u": username}).scalar()
    if code is None:
        return None
    return next((t for t in list_teams(engine) if t["code"] == code), None)


def department_name(engine: Engine, code: str | None) -> str | None:
    """The department's name (what its people call it), or None."""
    if not code:
        return None
    with engine.connect() as conn:
        return conn.execute(text("SELECT name FROM department WHERE code = :d"),
                            {"d": code}).scalar()
