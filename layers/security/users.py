"""Users, their areas and API keys (用户、辖区、接口密钥) in PostGIS.

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's
recommendation); API keys are random 256-bit secrets, so a single SHA-256 at rest is enough
(nothing to brute-force) and keeps the per-request check cheap. A key reads
``gck_<prefix>_<secret>``; the prefix finds the row, the secret is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from gridcore.errors import Conflict, NotFound, Unauthenticated, ValidationError
from gridcore.security.access import KEY_PURPOSES as ACCESS_KEY_PURPOSES
from gridcore.security.access import Principal, Role, parse_role, validate_area_codes
from layers.schema.security import api_key, app_user, user_area
from layers.security import audit

_hasher = PasswordHasher()
KEY_PURPOSES = tuple(ACCESS_KEY_PURPOSES)  # the domain's list: open311, iot, video
MIN_PASSWORD = 10


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    department_code: str | None
    areas: tuple[str, ...]
    disabled: bool
    display_name: str = ""
    worker_code: str | None = None  # the grid worker of the register this account is

    def principal(self) -> Principal:
        return Principal(self.username, self.role, self.department_code, self.areas)

    def as_dict(self) -> dict[str, Any]:
        return {"username": self.username, "role": self.role.value,
                "department": self.department_code, "areas": list(self.areas),
                "disabled": self.disabled, "display_name": self.display_name,
                "worker_code": self.worker_code}


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValidationError(f"password must have at least {MIN_PASSWORD} characters",
                              field="password")
    return _hasher.hash(password)


def _user(conn: Connection, username: str) -> User | None:
    row = conn.execute(select(app_user).where(app_user.c.username == username)).first()
    if row is None:
        return None
    areas = tuple(sorted(conn.execute(select(user_area.c.area_code)
                                      .where(user_area.c.user_id == row.id)).scalars()))
    return User(row.username, Role(row.role), row.department_code, areas, row.disabled,
                row.display_name, row.worker_code)


def get_user(engine: Engine, username: str) -> User | None:
    with engine.connect() as conn:
        return _user(conn, username)


def add_user(engine: Engine, username: str, password: str, role: str,
             department: str | None = None, areas: tuple[str, ...] = (),
             display_name: str = "", actor: str = "cli",
             worker_code: str | None = None) -> User:
    """Create a user in one transaction (with its areas and an audit row). ``worker_code``:
    the grid worker of the register (``grid_worker``) the account is, so that what the account
    does (patrols) counts for that worker in evaluation."""
    parsed = parse_role(role)
    codes = validate_area_codes(areas)
    if parsed == Role.DEPARTMENT_HANDLER and not department:
        raise ValidationError("a department handler needs --department", field="department")
    if parsed == Role.GRID_WORKER and not codes:
        raise ValidationError("a grid worker needs at least one area (--area GRIDCODE)",
                              field="areas")
    password_hash = hash_password(password)
    try:
        with engine.begin() as conn:
            user_id = conn.execute(app_user.insert().values(
                username=username, password_hash=password_hash, role=parsed.value,
                department_code=department, display_name=display_name,
                worker_code=worker_code)
                .returning(app_user.c.id)).scalar_one()
            if codes:
                conn.execute(user_area.insert(), [{"user_id": user_id, "area_code": c}
                                                  for c in codes])
            audit.record(conn, actor, "user.add", f"user:{username}",
                         {"role": parsed.value, "department": department,
                          "areas": list(codes)})
    except IntegrityError as exc:
        if "app_user_username_key" in str(exc.orig):
            raise Conflict(f"user {username!r} already exists", username=username) from None
        if "worker_code" in str(exc.orig):
            raise ValidationError(f"no grid worker {worker_code!r} in the register "
                                  "(gridcore import workers)", field="worker_code",
                                  value=worker_code) from None
        raise ValidationError(f"user {username!r} refused: {exc.orig}",
                              username=username) from None
    user = get_user(engine, username)
    assert user is not None
    return user


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        names = conn.execute(select(app_user.c.username).order_by(app_user.c.username))
        return [u for n in names.scalars().all() if (u := _user(conn, n)) is not None]


def set_disabled(engine: Engine, username: str, disabled: bool = True,
                 actor: str = "cli") -> None:
    with engine.begin() as conn:
        done = conn.execute(app_user.update().where(app_user.c.username == username)
                            .values(disabled=disabled, updated_at=func.now()))
        if done.rowcount == 0:
            raise NotFound(f"no user {username!r}", username=username)
        audit.record(conn, actor, "user.disable" if disabled else "user.enable",
                     f"user:{username}")


def link_worker(engine: Engine, username: str, worker_code: str | None,
                actor: str = "cli") -> User:
    """Link an account to its grid worker of the register (or unlink it with None): from then
    on its patrol shifts count for that worker in evaluation (巡查覆盖率)."""
    try:
        with engine.begin() as conn:
            done = conn.execute(app_user.update().where(app_user.c.username == username)
                                .values(worker_code=worker_code, updated_at=func.now()))
            if done.rowcount == 0:
                raise NotFound(f"no user {username!r}", username=username)
            audit.record(conn, actor, "user.worker", f"user:{username}",
                         {"worker_code": worker_code})
    except IntegrityError:
        raise ValidationError(f"no grid worker {worker_code!r} in the register "
                              "(gridcore import workers)", field="worker_code",
                              value=worker_code) from None
    user = get_user(engine, username)
    assert user is not None
    return user


def authenticate(engine: Engine, username: str, password: str) -> User:
    """The user behind a username and password; the same error for every failure so that a
    caller cannot probe which usernames exist."""
    bad = Unauthenticated("wrong username or password", msg_key="wrong_credentials")
    if "\x00" in username:  # PostgreSQL text cannot hold NUL: no such user (found by fuzzing)
        raise bad
    with engine.connect() as conn:
        row = conn.execute(select(app_user.c.password_hash)
                           .where(app_user.c.username == username)).first()
        user = _user(conn, username) if row else None
    if row is None or user is None:
        _hasher.hash("x" * MIN_PASSWORD)  # spend the same time as a real check
        raise bad
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise bad from None
    if user.disabled:
        raise bad
    return user


# -- API keys -------------------------------------------------------------------------------------
def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def add_key(engine: Engine, owner: str, purpose: str, actor: str = "cli") -> str:
    """Create a key and return it in full: this is the only time the secret is visible."""
    if purpose not in KEY_PURPOSES:
        raise ValidationError(f"key purpose must be one of {', '.join(KEY_PURPOSES)}",
                              field="purpose", value=purpose)
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(api_key.insert().values(prefix=prefix, secret_sha256=_sha(secret),
                                             owner=owner, purpose=purpose))
        audit.record(conn, actor, "key.add", f"key:{prefix}", {"owner": owner,
                                                               "purpose": purpose})
    return f"gck_{prefix}_{secret}"


def revoke_key(engine: Engine, prefix: str, actor: str = "cli") -> None:
    prefix = prefix.removeprefix("gck_").split("_")[0]
    with engine.begin() as conn:
        done = conn.execute(api_key.update().where(api_key.c.prefix == prefix)
                            .values(revoked=True, revoked_at=func.now()))
        if done.rowcount == 0:
            raise NotFound(f"no API key with prefix {prefix!r}", prefix=prefix)
        audit.record(conn, actor, "key.revoke", f"key:{prefix}")


def list_keys(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(api_key.c.prefix, api_key.c.owner, api_key.c.purpose,
                                   api_key.c.revoked, api_key.c.created_at)
                            .order_by(api_key.c.id))
        return [dict(r._mapping) for r in rows]


def principal_for_key(engine: Engine, presented: str) -> Principal:
    parts = presented.split("_", 2)
    bad = Unauthenticated("the API key (X-Api-Key or api_key) is invalid or revoked")
    if len(parts) != 3 or parts[0] != "gck":
        raise bad
    with engine.connect() as conn:
        row = conn.execute(select(api_key).where(api_key.c.prefix == parts[1])).first()
    if row is None or row.revoked or not hmac.compare_digest(row.secret_sha256,
                                                             _sha(parts[2])):
        raise bad
    return Principal(f"key:{row.prefix}:{row.owner}", key_purpose=row.purpose)
