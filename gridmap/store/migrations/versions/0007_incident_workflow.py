"""The incident workflow: routing, stages with versions, deadlines, an append-only timeline.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0007_incident_workflow_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0007_incident_workflow_down.sql"))
