"""Levels and coordination (小事不出社区，大事不出街道; 吹哨报到; 协同处置; 接诉即办).

- ``department.level`` (district / street / community; NULL: a city department) and
  ``area_code`` (the area it serves); ``level_team`` marks the area's own team, which takes the
  cases escalated to that level (one per area and level) and which a dispatch rule may name by
  its level (``dispatch_rule.team_level``, instead of a department);
- ``case_record``: ``location_source`` (point, geocoded, map, unlocated) and the ``address`` a
  hotline report came with; ``geom`` may be NULL — a report that could not be placed waits in
  the 待定位 queue (partial index) until a dispatcher locates it; ``self_handled`` (自处置);
  ``callback`` (回访: reached, resolved, satisfaction);
- ``case_task``: an assisting department's task on a case (协同), its limit, deadline, feedback;
- ``case_whistle``: a department a street's whistle (吹哨) named, its deadline and report (报到);
- ``case_message``: the consultation thread (会商) of a case, with attachments.

Revision ID: 0016_levels
Revises: 0015_devices
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0016_levels"
down_revision = "0015_devices"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE department
    ADD COLUMN level varchar(10) CHECK (level IN ('district', 'street', 'community')),
    ADD COLUMN area_code varchar(12),
    ADD COLUMN level_team boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT department_level_area CHECK (
        (level IS NULL AND NOT level_team) OR (level IS NOT NULL AND area_code IS NOT NULL
         AND length(area_code) = CASE level WHEN 'district' THEN 6 WHEN 'street' THEN 9
                                           ELSE 12 END));
CREATE UNIQUE INDEX department_level_team_uq ON department (level, area_code) WHERE level_team;

ALTER TABLE dispatch_rule
    ADD COLUMN team_level varchar(10) CHECK (team_level IN ('district', 'street', 'community')),
    ALTER COLUMN department_code DROP NOT NULL,
    ADD CONSTRAINT dispatch_rule_one_target
        CHECK ((department_code IS NULL) <> (team_level IS NULL));

ALTER TABLE case_record
    ALTER COLUMN geom DROP NOT NULL,
    ALTER COLUMN input_x DROP NOT NULL,
    ALTER COLUMN input_y DROP NOT NULL,
    ADD COLUMN location_source varchar(10) NOT NULL DEFAULT 'point'
        CHECK (location_source IN ('point', 'geocoded', 'map', 'unlocated')),
    ADD COLUMN address text,
    ADD COLUMN self_handled boolean NOT NULL DEFAULT false,
    ADD COLUMN callback jsonb,
    ADD CONSTRAINT case_record_placed CHECK (geom IS NOT NULL OR location_source = 'unlocated');
-- the 待定位 queue: open cases without a place, oldest first
CREATE INDEX case_record_unlocated_idx ON case_record (created_at, id)
    WHERE geom IS NULL AND state NOT IN ('closed', 'voided', 'merged');

CREATE TABLE case_task (
    id bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES case_record (id),
    department_code varchar(32) NOT NULL REFERENCES department (code),
    state varchar(8) NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'released')),
    task_limit varchar(12) NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    deadline_at timestamptz NOT NULL,
    done_at timestamptz,
    done_by text,
    feedback text,
    attachments jsonb NOT NULL DEFAULT '[]',
    released_at timestamptz,
    released_by text,
    release_reason text
);
CREATE UNIQUE INDEX case_task_open_uq ON case_task (case_id, department_code)
    WHERE state = 'open';
CREATE INDEX case_task_department_idx ON case_task (department_code, deadline_at);

CREATE TABLE case_whistle (
    id bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES case_record (id),
    department_code varchar(32) NOT NULL REFERENCES department (code),
    blown_at timestamptz NOT NULL,
    blown_by text NOT NULL,
    report_limit varchar(12) NOT NULL,
    deadline_at timestamptz NOT NULL,
    reported_at timestamptz,
    reported_by text
);
CREATE UNIQUE INDEX case_whistle_waiting_uq ON case_whistle (case_id, department_code)
    WHERE reported_at IS NULL;
CREATE INDEX case_whistle_department_idx ON case_whistle (department_code, blown_at);

CREATE TABLE case_message (
    id bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES case_record (id),
    at timestamptz NOT NULL DEFAULT now(),
    author text NOT NULL,
    role varchar(20) NOT NULL,
    department_code varchar(32),
    body text NOT NULL,
    attachments jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX case_message_case_idx ON case_message (case_id, id);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS case_message;
DROP TABLE IF EXISTS case_whistle;
DROP TABLE IF EXISTS case_task;
DROP INDEX IF EXISTS case_record_unlocated_idx;
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM case_record WHERE geom IS NULL) THEN
        RAISE EXCEPTION 'downgrade refused: % case(s) wait without a place (待定位) and the '
            'older schema needs one; locate them first',
            (SELECT count(*) FROM case_record WHERE geom IS NULL);
    END IF;
END $$;
ALTER TABLE case_record
    DROP CONSTRAINT IF EXISTS case_record_placed,
    DROP COLUMN IF EXISTS callback,
    DROP COLUMN IF EXISTS self_handled,
    DROP COLUMN IF EXISTS address,
    DROP COLUMN IF EXISTS location_source,
    ALTER COLUMN geom SET NOT NULL,
    ALTER COLUMN input_x SET NOT NULL,
    ALTER COLUMN input_y SET NOT NULL;
DELETE FROM dispatch_rule WHERE department_code IS NULL;
ALTER TABLE dispatch_rule
    DROP CONSTRAINT IF EXISTS dispatch_rule_one_target,
    DROP COLUMN IF EXISTS team_level,
    ALTER COLUMN department_code SET NOT NULL;
DROP INDEX IF EXISTS department_level_team_uq;
ALTER TABLE department
    DROP CONSTRAINT IF EXISTS department_level_area,
    DROP COLUMN IF EXISTS level_team,
    DROP COLUMN IF EXISTS area_code,
    DROP COLUMN IF EXISTS level;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
