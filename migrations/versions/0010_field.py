"""The grid worker's phone: who filed a case, photos of lifecycle steps, device sessions
(refresh tokens), patrol shifts and their tracks.

- ``case_record.filed_by``: the signed-in user who filed the case (NULL for machine sources,
  Open311 and the development stand-in). That user may always read the case (``GET /me/reports``).
- ``case_photo.history_id``: the lifecycle step a photo belongs to (NULL: the report's own).
- ``device_session``: one row per signed-in device; the refresh token is stored as a SHA-256
  (the current one, and the one it replaced, for the grace period of a lost answer).
- ``patrol_shift`` / ``patrol_point``: a worker's shifts on duty (巡查) and their positions; the
  shift's track is kept as a LineString with the time of each vertex as its M value.

- ``app_user.worker_code``: the grid worker (``grid_worker``, 网格员名册) an account belongs to, and
  the view ``patrol_worker_track`` (worker_code, started_at, geom…): the shifts as evaluation's
  patrol coverage reads them (``gridcore/data/evaluation_indicators.json``, ``patrol``, names
  the table it reads).

Revision ID: 0010_field
Revises: 0009_appeals
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0010_field"
down_revision = "0009_appeals"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE case_record ADD COLUMN filed_by text;
CREATE INDEX case_record_filed_by_idx ON case_record (filed_by, id) WHERE filed_by IS NOT NULL;
ALTER TABLE case_photo ADD COLUMN history_id bigint REFERENCES case_history (id);

CREATE TABLE device_session (
    id varchar(32) PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    device text NOT NULL DEFAULT '',
    user_agent text NOT NULL DEFAULT '',
    refresh_sha256 char(64) NOT NULL,
    previous_sha256 char(64),
    rotated_at timestamptz,
    rotations integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    last_addr text,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_by text,
    revoke_reason text
);
CREATE INDEX device_session_user_idx ON device_session (user_id, created_at);

CREATE TABLE patrol_shift (
    id uuid PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    points integer NOT NULL DEFAULT 0,
    length_m double precision NOT NULL DEFAULT 0,
    track geometry(LineStringM, 4326),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX patrol_shift_user_idx ON patrol_shift (user_id, started_at DESC);
CREATE INDEX patrol_shift_track_idx ON patrol_shift USING gist (track);

CREATE TABLE patrol_point (
    shift_id uuid NOT NULL REFERENCES patrol_shift (id) ON DELETE CASCADE,
    at timestamptz NOT NULL,
    geom geometry(Point, 4326) NOT NULL,
    accuracy_m real,
    PRIMARY KEY (shift_id, at)
);

CREATE TRIGGER patrol_shift_layer_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON patrol_shift FOR EACH STATEMENT EXECUTE FUNCTION gridcore_bump_layer_version('patrols');
INSERT INTO layer_version_shard (layer, shard, version) VALUES ('patrols', 0, 0)
    ON CONFLICT DO NOTHING;

ALTER TABLE app_user ADD COLUMN worker_code varchar(32)
    REFERENCES grid_worker (code) ON DELETE SET NULL;
-- a worker's shifts as evaluation reads them: by the worker's code, 2-D, with a track
CREATE VIEW patrol_worker_track AS
    SELECT s.id, u.worker_code, u.username, s.started_at, s.ended_at, s.points, s.length_m,
           ST_Force2D(s.track) AS geom
    FROM patrol_shift s JOIN app_user u ON u.id = s.user_id
    WHERE u.worker_code IS NOT NULL AND s.track IS NOT NULL;
"""

DOWNGRADE = """
DROP VIEW IF EXISTS patrol_worker_track;
ALTER TABLE app_user DROP COLUMN IF EXISTS worker_code;
DROP TABLE IF EXISTS patrol_point;
DROP TABLE IF EXISTS patrol_shift;
DELETE FROM layer_version_shard WHERE layer = 'patrols';
DROP TABLE IF EXISTS device_session;
ALTER TABLE case_photo DROP COLUMN IF EXISTS history_id;
DROP INDEX IF EXISTS case_record_filed_by_idx;
ALTER TABLE case_record DROP COLUMN IF EXISTS filed_by;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
