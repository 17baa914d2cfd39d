"""The intelligence tables (the intelligence migration): trained models and the stored forecast.

``intel_model`` holds every trained model of each kind with its held-out metrics and its bytes;
at most one per kind is active. The bytes live in the table, not in files under the data
directory: a model is a few megabytes, it is stored, activated and backed up (``gridcore db
backup``) in the same transaction and dump as its metadata, and every server process — on any
host — reads it from the one database, with no shared file system to keep in step.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from layers.schema.city import metadata

intel_model = Table(
    "intel_model", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # classify | dispatch | forecast
    Column("version", Integer, nullable=False),
    Column("trained_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("trained_by", Text, nullable=False, server_default=""),
    Column("data_from", DateTime(timezone=True)),
    Column("data_to", DateTime(timezone=True)),
    Column("n_cases", Integer, nullable=False),
    Column("params", JSONB, nullable=False, server_default="{}"),
    Column("metrics", JSONB, nullable=False, server_default="{}"),
    Column("threshold", Float),
    Column("sklearn_version", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default="false"),
    Column("activated_at", DateTime(timezone=True)),
    Column("note", Text, nullable=False, server_default=""),
    Column("size_bytes", Integer, nullable=False),
    Column("model", LargeBinary, nullable=False),
)

case_forecast = Table(
    "case_forecast", metadata,
    Column("model_id", BigInteger, ForeignKey("intel_model.id", ondelete="CASCADE"),
           primary_key=True),
    Column("level", String(10), primary_key=True),  # grid | community
    Column("area_code", String(15), primary_key=True),
    Column("category_key", String(5), primary_key=True),
    Column("week", Date, nullable=False),
    Column("expected", Float, nullable=False),
    Column("p90", Float, nullable=False),
)
