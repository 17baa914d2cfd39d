"""Core tables of users, their areas, API keys and the audit log (migration 0003_security)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from layers.schema.city import metadata

app_user = Table(
    "app_user", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", Text, nullable=False, server_default=""),
    Column("password_hash", Text, nullable=False),
    Column("role", String(24), nullable=False),
    Column("department_code", String(40)),
    Column("disabled", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    # the grid worker of the register (grid_worker) this account is (migration 0010_field)
    Column("worker_code", String(32), ForeignKey("grid_worker.code", ondelete="SET NULL")),
    Column("team_code", String(40), ForeignKey("team.code", ondelete="SET NULL")),
    Column("team_leader", Boolean, nullable=False, server_default="false"),
)

# A department's team (班组, the desk migration): its leader assigns cases to its members.
team = Table(
    "team", metadata,
    Column("code", String(40), primary_key=True),
    Column("department_code", String(32), ForeignKey("department.code"), nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True)),
)

user_area = Table(
    "user_area", metadata,
    Column("user_id", BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"),
           primary_key=True),
    Column("area_code", String(15), primary_key=True),
)

api_key = Table(
    "api_key", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("owner", Text, nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("revoked", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

audit_log = Table(
    "audit_log", metadata,
    Column("seq", BigInteger, primary_key=True),  # insertion order (a sequence, no lock)
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False, server_default=""),
    Column("details", JSONB, nullable=False, server_default="{}"),
    Column("remote_addr", Text),
    # Set once by the sealer (layers.security.audit.seal), in the order it sees committed rows.
    Column("chain_pos", BigInteger, unique=True),
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
)

# One signed-in device (migration 0010_field): its refresh token as a SHA-256, the one it
# replaced (honoured for a short grace period), and when it was last used or revoked.
device_session = Table(
    "device_session", metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"),
           nullable=False),
    Column("device", Text, nullable=False, server_default=""),
    Column("user_agent", Text, nullable=False, server_default=""),
    Column("refresh_sha256", String(64), nullable=False),
    Column("previous_sha256", String(64)),
    Column("rotated_at", DateTime(timezone=True)),
    Column("rotations", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=False),
    Column("last_addr", Text),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", Text),
    Column("revoke_reason", Text),
)
