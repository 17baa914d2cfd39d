"""Case intake sends its NOTIFY after its commit, not in it.

PostgreSQL makes every transaction that NOTIFYs take one lock for the whole cluster at commit
and hold it until the commit is done — through the WAL flush — so that notifications queue in
commit order. With the case-event trigger notifying inside every intake write, two servers'
writes committed one at a time: under bench_intake the writes mostly waited on that lock
(``Lock:object`` on pg_database in pg_stat_activity; benchmarks/README.md, "Session 5
(branch intake5)"), and group commit could not share a WAL flush between them.

A writer that notifies by itself right after its commit (``layers.cases.write``: a statement of
its own without a WAL flush to wait for) says so with the transaction-local setting
``gridcore.notify_after_commit``; the trigger then leaves the NOTIFY to it. Every other writer
is notified by the trigger as before.

Revision ID: 0024_event_notify_after
Revises: 0023_health_runs
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0024_event_notify_after"
down_revision = "0023_health_runs"
branch_labels = None
depends_on = None

_BODY = """
CREATE OR REPLACE FUNCTION gridcore_case_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids text;
BEGIN
    %(skip)s
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
"""
_SKIP = """IF current_setting('gridcore.notify_after_commit', true) = 'on' THEN
        RETURN NULL;  -- the writer notifies after its commit (layers.cases.write)
    END IF;"""


def upgrade() -> None:
    op.execute(_BODY % {"skip": _SKIP})


def downgrade() -> None:
    op.execute(_BODY % {"skip": ""})
