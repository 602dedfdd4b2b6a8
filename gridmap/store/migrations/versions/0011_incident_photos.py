"""Photos of incidents: taken at intake or with a step, kept as files, described here.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0011_incident_photos_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0011_incident_photos_down.sql"))
