"""The desk: search indexes, the dispatcher's queue index, supervision marks, teams and case
assignment, the event outbox with its NOTIFY, subscriptions and outgoing webhooks.

- ``pg_trgm`` (trusted since PostgreSQL 13) indexes case descriptions for substring search;
  PostgreSQL under a UTF-8 ctype treats Chinese characters as letters, so a trigram index
  finds any substring of three characters or more without word segmentation. Two-character
  words (most Chinese words: 路灯, 井盖) have no trigram to look up, so a second GIN index
  holds each description's CJK character pairs (``gridcore_cjk_bigrams``) for them.
- ``case_event`` is the outbox: every lifecycle step and every new case writes its domain event
  in the same transaction as the change. A statement trigger NOTIFYs ``gridcore_events`` with
  the new ids on commit; every server process LISTENs (``layers.notifications.listener``) and
  streams them to its pages, so one process's commit reaches every process's pages.
- ``webhook`` / ``webhook_delivery`` / ``webhook_attempt``: outgoing webhooks and their log.

Revision ID: 0018_desk
Revises: 0017_intelligence
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0018_desk"
down_revision = "0017_intelligence"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Search: substrings of descriptions (≥ 3 characters through trigrams, Chinese pairs through
-- the bigram array).
CREATE FUNCTION gridcore_cjk_bigrams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT b), '{}'::text[])
    FROM (SELECT substr(t, i, 2) AS b FROM generate_series(1, length(t) - 1) AS i) s
    WHERE b ~ '^[\u3400-\u9fff\uf900-\ufaff]{2}$'
$$;
CREATE INDEX case_record_description_trgm_idx ON case_record
    USING gin (description gin_trgm_ops);
CREATE INDEX case_record_description_bigram_idx ON case_record
    USING gin (gridcore_cjk_bigrams(description));

-- The dispatcher's queue: open cases by state, soonest deadline first. It covers what the
-- queue's counts and filters read (clock marks, class, department, areas), so that counting
-- 100,000 open cases reads this index only, not the table's pages they are scattered over.
CREATE INDEX case_record_queue_idx ON case_record (state, deadline_at, id)
    INCLUDE (warn_at, parked_since, category_key, department_code, grid_code, community_code,
             street_code, district_code)
    WHERE state NOT IN ('closed', 'voided', 'merged');
-- Open cases by class: the count beside a class found by search.
CREATE INDEX case_record_open_category_idx ON case_record (category_key)
    WHERE state NOT IN ('closed', 'voided', 'merged');
-- Parked open cases (挂账, few): the queue's clock filters judge them apart.
CREATE INDEX case_record_parked_idx ON case_record (state, deadline_at, id)
    WHERE parked_since IS NOT NULL AND state NOT IN ('closed', 'voided', 'merged');

-- Supervision marks (the deadline a warning / an overdue signal was given for: a new clock
-- warns again, the same clock never twice) and the handler a team leader assigned.
ALTER TABLE case_record ADD COLUMN warned_for timestamptz,
                        ADD COLUMN overdue_for timestamptz,
                        ADD COLUMN assignee varchar(64);
CREATE INDEX case_record_assignee_idx ON case_record (assignee) WHERE assignee IS NOT NULL;
-- The supervision sweep's look-up: open cases not yet signalled for their current clock.
CREATE INDEX case_record_signal_due_idx ON case_record (warn_at)
    WHERE state NOT IN ('closed', 'voided', 'merged')
      AND (warned_for IS DISTINCT FROM deadline_at OR overdue_for IS DISTINCT FROM deadline_at);

-- Teams (班组) of a department; a user belongs to at most one, a leader assigns its cases.
CREATE TABLE team (
    code varchar(40) PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9_.-]{1,40}$'),
    department_code varchar(32) NOT NULL REFERENCES department (code),
    name text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE app_user ADD COLUMN team_code varchar(40) REFERENCES team (code)
                         ON DELETE SET NULL,
                     ADD COLUMN team_leader boolean NOT NULL DEFAULT false;

-- The outbox of domain events (no foreign key: a log that outlives nothing it names).
CREATE TABLE case_event (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    kind varchar(16) NOT NULL,
    case_id bigint NOT NULL,
    public_no text,
    grid_code varchar(15),
    category_key varchar(5),
    department_code varchar(32),
    assignee varchar(64),
    state varchar(12),
    actor text NOT NULL DEFAULT '',
    details jsonb NOT NULL DEFAULT '{}',
    fanned_out boolean NOT NULL DEFAULT false
);
CREATE INDEX case_event_case_idx ON case_event (case_id, id);
CREATE INDEX case_event_at_idx ON case_event (at);
CREATE INDEX case_event_unfanned_idx ON case_event (id) WHERE NOT fanned_out;

CREATE FUNCTION gridcore_case_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    SELECT string_agg(id::text, ',' ORDER BY id) INTO ids FROM new_events;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    IF length(ids) > 7900 THEN  -- NOTIFY payloads stop at 8000 bytes: send the range
        SELECT min(id)::text || '-' || max(id)::text INTO ids FROM new_events;
    END IF;
    PERFORM pg_notify('gridcore_events', ids);
    RETURN NULL;
END $$;
CREATE TRIGGER case_event_notify AFTER INSERT ON case_event
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT
    EXECUTE FUNCTION gridcore_case_event_notify();

-- What a user wants to hear about: area × class × event kind (empty = everything in scope).
CREATE TABLE event_subscription (
    username varchar(64) PRIMARY KEY REFERENCES app_user (username)
        ON DELETE CASCADE ON UPDATE CASCADE,
    kinds text[] NOT NULL DEFAULT '{}',
    areas text[] NOT NULL DEFAULT '{}',
    categories text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook (
    id bigserial PRIMARY KEY,
    name varchar(64) NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    url text NOT NULL CHECK (url ~ '^https?://'),
    secret text NOT NULL,
    format varchar(12) NOT NULL DEFAULT 'json'
        CHECK (format IN ('json', 'wecom', 'dingtalk')),
    kinds text[] NOT NULL DEFAULT '{}',
    areas text[] NOT NULL DEFAULT '{}',
    categories text[] NOT NULL DEFAULT '{}',
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE webhook_delivery (
    id bigserial PRIMARY KEY,
    webhook_id bigint NOT NULL REFERENCES webhook (id) ON DELETE CASCADE,
    event_id bigint NOT NULL REFERENCES case_event (id),
    state varchar(10) NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL DEFAULT now(),
    last_status integer,
    last_error text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_delivery_due_idx ON webhook_delivery (next_at) WHERE state = 'pending';
CREATE TABLE webhook_attempt (
    id bigserial PRIMARY KEY,
    delivery_id bigint NOT NULL REFERENCES webhook_delivery (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    status integer,
    error text NOT NULL DEFAULT '',
    duration_ms integer NOT NULL DEFAULT 0
);
CREATE INDEX webhook_attempt_delivery_idx ON webhook_attempt (delivery_id, id);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS webhook_attempt;
DROP TABLE IF EXISTS webhook_delivery;
DROP TABLE IF EXISTS webhook;
DROP TABLE IF EXISTS event_subscription;
DROP TABLE IF EXISTS case_event;
DROP FUNCTION IF EXISTS gridcore_case_event_notify();
ALTER TABLE app_user DROP COLUMN IF EXISTS team_leader, DROP COLUMN IF EXISTS team_code;
DROP TABLE IF EXISTS team;
DROP INDEX IF EXISTS case_record_signal_due_idx;
DROP INDEX IF EXISTS case_record_assignee_idx;
ALTER TABLE case_record DROP COLUMN IF EXISTS assignee, DROP COLUMN IF EXISTS overdue_for,
                        DROP COLUMN IF EXISTS warned_for;
DROP INDEX IF EXISTS case_record_parked_idx;
DROP INDEX IF EXISTS case_record_open_category_idx;
DROP INDEX IF EXISTS case_record_queue_idx;
DROP INDEX IF EXISTS case_record_description_bigram_idx;
DROP INDEX IF EXISTS case_record_description_trgm_idx;
DROP FUNCTION IF EXISTS gridcore_cjk_bigrams(text);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
