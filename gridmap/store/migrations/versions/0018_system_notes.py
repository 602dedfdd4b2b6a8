"""What gridmap writes into the timeline of a case, the audit log and the notes of grid
versions, kept as message keys with values (``incident_event.notes``,
``audit_log.detail_notes``, ``grid_version.note_notes``: JSON lists, see
:mod:`gridmap.domain.notes`) beside the English text, so that each reader sees it in their
own language. Rows written before keep their text alone and show it as it is.

Revision ID: 0018
Revises: 0015
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0018_system_notes_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0018_system_notes_down.sql"))
