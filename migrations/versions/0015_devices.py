"""Devices (物联感知设备、视频智能分析) and the cases their alarms opened.

- ``device``: a sensor or camera, its source (``iot`` / ``video``), the city part it watches or
  its own point, the classes its alarms map to (``{"tilt": "P0101"}``), whether it is trusted
  (its reports are verified by the system), and what it said last;
- ``device_case``: which case an alarm of a device and class opened — the rule "one open case
  per device and problem" looks here, and a repeated alarm is counted on the row;
- ``case_record.close_proposal``: the system's proposal to close (建议结案) when the device
  reads normal again, for the person who checks;
- a case's ``source`` may be ``iot`` or ``video`` (machine discovery told apart; ``machine``
  stays for older cases — the downgrade turns both back into it); API keys of purpose
  ``video`` (the downgrade revokes them).

Revision ID: 0015_devices
Revises: 0014_addresses
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0015_devices"
down_revision = "0014_addresses"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE device (
    code varchar(64) PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_.:-]{1,64}$'),
    name text NOT NULL DEFAULT '',
    kind varchar(32) NOT NULL DEFAULT '',
    source varchar(8) NOT NULL CHECK (source IN ('iot', 'video')),
    part_code varchar(16) REFERENCES city_part (code),
    geom geometry(Point, 4326) NOT NULL,
    alarms jsonb NOT NULL DEFAULT '{}',
    trusted boolean NOT NULL DEFAULT false,
    active boolean NOT NULL DEFAULT true,
    last_seen_at timestamptz,
    last_alarm text,
    last_state varchar(8),
    attributes jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_geom_idx ON device USING gist (geom);
CREATE INDEX device_part_idx ON device (part_code) WHERE part_code IS NOT NULL;

CREATE TABLE device_case (
    device_code varchar(64) NOT NULL REFERENCES device (code) ON UPDATE CASCADE,
    category_key varchar(5) NOT NULL,
    case_id bigint NOT NULL UNIQUE REFERENCES case_record (id),
    alarm text NOT NULL DEFAULT '',
    opened_at timestamptz NOT NULL DEFAULT now(),
    repeats integer NOT NULL DEFAULT 0,
    last_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device_code, case_id)
);
CREATE INDEX device_case_open_idx ON device_case (device_code, category_key);

ALTER TABLE case_record ADD COLUMN close_proposal jsonb;
-- machine discovery told apart: sensors (iot) and video analytics (video)
ALTER TABLE case_record DROP CONSTRAINT case_record_source_check;
ALTER TABLE case_record ADD CONSTRAINT case_record_source_check CHECK (source IN (
    'grid_worker', 'hotline', 'citizen', 'machine', 'iot', 'video', 'open311', 'other'));
-- API keys of video analytics beside those of sensors
ALTER TABLE api_key DROP CONSTRAINT api_key_purpose_check;
ALTER TABLE api_key ADD CONSTRAINT api_key_purpose_check
    CHECK (purpose IN ('open311', 'iot', 'video'));
"""

DOWNGRADE = """
UPDATE api_key SET revoked = true, purpose = 'iot' WHERE purpose = 'video';
ALTER TABLE api_key DROP CONSTRAINT api_key_purpose_check;
ALTER TABLE api_key ADD CONSTRAINT api_key_purpose_check CHECK (purpose IN ('open311', 'iot'));
UPDATE case_record SET source = 'machine' WHERE source IN ('iot', 'video');
ALTER TABLE case_record DROP CONSTRAINT case_record_source_check;
ALTER TABLE case_record ADD CONSTRAINT case_record_source_check CHECK (source IN (
    'grid_worker', 'hotline', 'citizen', 'machine', 'open311', 'other'));
ALTER TABLE case_record DROP COLUMN IF EXISTS close_proposal;
DROP TABLE IF EXISTS device_case;
DROP TABLE IF EXISTS device;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
