"""Device sessions and their rotating refresh tokens in PostGIS (the rules:
``gridcore.security.sessions``).

Opening, rotating and revoking a session each run in one transaction; a refresh locks its
session row (``FOR UPDATE``), so two refreshes racing with one token cannot both rotate it.
Opening and revoking are audited; a rotation is not (one every quarter of an hour per device
would drown the log), but reuse of a rotated token is, with the revocation it causes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from gridcore.errors import NotFound, Unauthenticated
from gridcore.security import sessions as rules
from layers.schema.security import app_user, device_session
from layers.security import audit
from layers.security.users import User, get_user

_SHOWN = (device_session.c.id, device_session.c.device, device_session.c.user_agent,
          device_session.c.created_at, device_session.c.last_used_at,
          device_session.c.last_addr, device_session.c.expires_at,
          device_session.c.revoked_at, device_session.c.revoked_by,
          device_session.c.revoke_reason, device_session.c.rotations)


@dataclass(frozen=True)
class Issued:
    """A session's new refresh token (shown once) and until when it is good if unused."""

    user: User
    session_id: str
    refresh_token: str
    expires_at: datetime


def open_session(engine: Engine, user: User, days: int, device: str = "",
                 user_agent: str = "", addr: str | None = None) -> Issued:
    now = datetime.now(UTC)
    sid, secret = rules.new_session_id(), rules.new_secret()
    expires = now + timedelta(days=days)
    with engine.begin() as conn:
        user_id = conn.execute(select(app_user.c.id).where(
            app_user.c.username == user.username)).scalar_one()
        conn.execute(device_session.insert().values(
            id=sid, user_id=user_id, device=device[:200], user_agent=user_agent[:400],
            refresh_sha256=rules.digest(secret), created_at=now, last_used_at=now,
            last_addr=addr, expires_at=expires))
        audit.record(conn, user.username, "auth.session.open", f"session:{sid}",
                     {"device": device[:200]}, remote_addr=addr)
    return Issued(user, sid, rules.refresh_token(sid, secret), expires)


def rotate(engine: Engine, token: str, days: int, grace_s: float,
           addr: str | None = None) -> Issued:
    """A new refresh token for the session ``token`` belongs to, or Unauthenticated saying
    why not (revoked, expired, reused: then the session is revoked now)."""
    sid, secret = rules.parse_refresh_token(token)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = conn.execute(select(device_session, app_user.c.username, app_user.c.disabled)
                           .join(app_user, app_user.c.id == device_session.c.user_id)
                           .where(device_session.c.id == sid)
                           .with_for_update(of=device_session)).first()
        if row is None:
            raise Unauthenticated(rules.REFUSALS[rules.Verdict.WRONG])
        verdict = rules.judge(rules.StoredSession(
            row.refresh_sha256, row.previous_sha256, row.rotated_at, row.expires_at,
            row.revoked_at is not None), secret, now, timedelta(seconds=grace_s))
        if verdict is rules.Verdict.REUSED:
            conn.execute(device_session.update().where(device_session.c.id == sid).values(
                revoked_at=now, revoked_by="system", revoke_reason="refresh token reused"))
            audit.record(conn, row.username, "auth.session.reuse", f"session:{sid}",
                         remote_addr=addr)
        if verdict not in (rules.Verdict.ROTATE, rules.Verdict.GRACE):
            refusal = Unauthenticated(rules.REFUSALS[verdict], session_id=sid,
                                      reason=verdict.value)
        elif row.disabled:
            refusal = Unauthenticated("the user of this session is disabled", session_id=sid)
        else:
            refusal = None
            fresh = rules.new_secret()
            expires = now + timedelta(days=days)
            # In the grace period the previous token stays the previous one and the period
            # is not extended; the token of the lost answer is dropped.
            rotated = ({"previous_sha256": row.refresh_sha256, "rotated_at": now}
                       if verdict is rules.Verdict.ROTATE else {})
            conn.execute(device_session.update().where(device_session.c.id == sid).values(
                refresh_sha256=rules.digest(fresh), rotations=device_session.c.rotations + 1,
                last_used_at=now, last_addr=addr, expires_at=expires, **rotated))
    if refusal is not None:  # raised after the commit: a reuse's revocation must stay
        raise refusal
    user = get_user(engine, row.username)
    assert user is not None
    return Issued(user, sid, rules.refresh_token(sid, fresh), expires)


def sign_out(engine: Engine, token: str, grace_s: float, addr: str | None = None) -> None:
    """Revoke the session ``token`` belongs to, if the token is still good for it (a stale
    or unknown token signs nothing out: nothing to do)."""
    sid, secret = rules.parse_refresh_token(token)
    with engine.connect() as conn:
        row = conn.execute(select(device_session).where(device_session.c.id == sid)).first()
    if row is None or rules.judge(rules.StoredSession(
            row.refresh_sha256, row.previous_sha256, row.rotated_at, row.expires_at,
            row.revoked_at is not None), secret, datetime.now(UTC),
            timedelta(seconds=grace_s)) not in (rules.Verdict.ROTATE, rules.Verdict.GRACE):
        return
    revoke(engine, sid, None, "signed out", addr=addr)


def session_active(engine: Engine, session_id: str) -> bool:
    """Is the session of an access token still open (neither revoked nor expired)?"""
    with engine.connect() as conn:
        row = conn.execute(select(device_session.c.revoked_at, device_session.c.expires_at)
                           .where(device_session.c.id == session_id)).first()
    return row is not None and row.revoked_at is None and row.expires_at > datetime.now(UTC)


def list_sessions(engine: Engine, username: str | None = None,
                  active_only: bool = False) -> list[dict[str, Any]]:
    """Sessions, newest first (one user's, or everyone's), without any secret."""
    query = (select(app_user.c.username, *_SHOWN)
             .join(app_user, app_user.c.id == device_session.c.user_id)
             .order_by(device_session.c.created_at.desc()))
    if username is not None:
        query = query.where(app_user.c.username == username)
    if active_only:
        query = query.where(device_session.c.revoked_at.is_(None),
                            device_session.c.expires_at > func.now())
    now = datetime.now(UTC)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    out = []
    for r in rows:
        item = dict(r)
        item["active"] = r["revoked_at"] is None and r["expires_at"] > now
        out.append(item)
    return out


def revoke(engine: Engine, session_id: str, actor: str | None, reason: str = "",
           username: str | None = None, addr: str | None = None) -> None:
    """Revoke one session (``username``: only if it is that user's — a user revoking their
    own; another's is "not found", not "forbidden"). ``actor`` None: the session's own user
    (a device signing itself out)."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        query = (select(device_session.c.id, app_user.c.username)
                 .join(app_user, app_user.c.id == device_session.c.user_id)
                 .where(device_session.c.id == session_id))
        if username is not None:
            query = query.where(app_user.c.username == username)
        row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no session {session_id!r}", session_id=session_id)
        conn.execute(device_session.update().where(device_session.c.id == session_id,
                                                   device_session.c.revoked_at.is_(None))
                     .values(revoked_at=now, revoked_by=actor or row.username,
                             revoke_reason=reason[:200]))
        audit.record(conn, actor or row.username, "auth.session.revoke",
                     f"session:{session_id}",
                     {"user": row.username, "reason": reason[:200]}, remote_addr=addr)


def revoke_user(engine: Engine, username: str, actor: str, reason: str = "",
                addr: str | None = None) -> int:
    """Revoke every open session of a user (a lost phone, a user who left); how many."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        user_id = conn.execute(select(app_user.c.id).where(
            app_user.c.username == username)).scalar()
        if user_id is None:
            raise NotFound(f"no user {username!r}", username=username)
        done = conn.execute(device_session.update().where(
            device_session.c.user_id == user_id, device_session.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=actor, revoke_reason=reason[:200]))
        audit.record(conn, actor, "auth.session.revoke", f"user:{username}",
                     {"sessions": done.rowcount, "reason": reason[:200]}, remote_addr=addr)
        return int(done.rowcount)
