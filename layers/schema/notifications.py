"""Core tables of the event outbox, subscriptions and outgoing webhooks (the desk migration).

``case_event`` is written in the same transaction as the change it reports (intake, lifecycle
steps, supervision); a statement trigger NOTIFYs ``gridcore_events`` with the new ids.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from layers.schema.city import metadata

CHANNEL = "gridcore_events"  # the NOTIFY channel of the desk migration's trigger

case_event = Table(
    "case_event", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("case_id", BigInteger, nullable=False),
    Column("public_no", Text),
    Column("grid_code", String(15)),
    Column("category_key", String(5)),
    Column("department_code", String(32)),
    Column("assignee", String(64)),
    Column("state", String(12)),
    Column("actor", Text, nullable=False, server_default=""),
    Column("details", JSONB, nullable=False, server_default="{}"),
    Column("fanned_out", Boolean, nullable=False, server_default="false"),
)

event_subscription = Table(
    "event_subscription", metadata,
    Column("username", String(64), ForeignKey("app_user.username"), primary_key=True),
    Column("kinds", ARRAY(Text), nullable=False, server_default="{}"),
    Column("areas", ARRAY(Text), nullable=False, server_default="{}"),
    Column("categories", ARRAY(Text), nullable=False, server_default="{}"),
    Column("updated_at", DateTime(timezone=True)),
)

webhook = Table(
    "webhook", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("format", String(12), nullable=False, server_default="json"),
    Column("kinds", ARRAY(Text), nullable=False, server_default="{}"),
    Column("areas", ARRAY(Text), nullable=False, server_default="{}"),
    Column("categories", ARRAY(Text), nullable=False, server_default="{}"),
    Column("active", Boolean, nullable=False, server_default="true"),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)

webhook_delivery = Table(
    "webhook_delivery", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("webhook_id", BigInteger, ForeignKey("webhook.id", ondelete="CASCADE"),
           nullable=False),
    Column("event_id", BigInteger, ForeignKey("case_event.id"), nullable=False),
    Column("state", String(10), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_at", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    UniqueConstraint("webhook_id", "event_id"),
)

webhook_attempt = Table(
    "webhook_attempt", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("delivery_id", BigInteger, ForeignKey("webhook_delivery.id", ondelete="CASCADE"),
           nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", Integer),
    Column("error", Text, nullable=False, server_default=""),
    Column("duration_ms", Integer, nullable=False, server_default="0"),
)
