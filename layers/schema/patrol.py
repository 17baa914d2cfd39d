"""Patrol shifts (巡查) and their positions (migration 0010_field).

A shift's id is made by the phone (a worker may go on duty without a network); its track is
a LineString whose M value is each vertex's time (epoch seconds), rebuilt from the points
whenever a batch arrives.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, Column, DateTime, Float, ForeignKey, Integer, Table, func
from sqlalchemy.dialects.postgresql import UUID

from layers.schema.city import SRID, metadata

patrol_shift = Table(
    "patrol_shift", metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("app_user.id", ondelete="CASCADE"),
           nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("points", Integer, nullable=False, server_default="0"),
    Column("length_m", Float, nullable=False, server_default="0"),
    Column("track", Geometry("LINESTRINGM", srid=SRID, spatial_index=False)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

patrol_point = Table(
    "patrol_point", metadata,
    Column("shift_id", UUID(as_uuid=False), ForeignKey("patrol_shift.id", ondelete="CASCADE"),
           primary_key=True),
    Column("at", DateTime(timezone=True), primary_key=True),
    Column("geom", Geometry("POINT", srid=SRID, spatial_index=False), nullable=False),
    Column("accuracy_m", Float),
)
