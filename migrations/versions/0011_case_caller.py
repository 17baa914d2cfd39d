"""Who sent a case (``case_record.caller``): the identity behind the report, beside
``filed_by`` (the signed-in user, migration 0010_field).

``user:<name>`` for a signed-in user, ``key:<prefix>:<owner>`` for an API key (an Open311 app,
an IoT source), ``stand-in:<actor>`` for the development stand-in, '' for a report filed by the
command line or the product itself. Two uses (issue 18):

* an idempotency key belongs to the caller that used it first: another caller replaying it
  gets a 409 without the case (``layers.cases.intake``);
* an API key reads (Open311 ``GET requests``) only the cases it sent — the partial index
  serves that query; users read by their areas (and what they filed) as before.

Rows written before this revision take ``user:<filed_by>`` where 0010_field recorded the user,
else '' (sent by nobody known): a replay of such a key is a 409 for every caller.

Revision ID: 0011_case_caller
Revises: 0010_field
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011_case_caller"
down_revision = "0010_field"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE case_record ADD COLUMN caller text NOT NULL DEFAULT ''")
    op.execute("UPDATE case_record SET caller = 'user:' || filed_by WHERE filed_by IS NOT NULL")
    op.execute("CREATE INDEX case_record_key_caller_idx ON case_record (caller, id) "
               "WHERE caller LIKE 'key:%'")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS case_record_key_caller_idx")
    op.execute("ALTER TABLE case_record DROP COLUMN IF EXISTS caller")
