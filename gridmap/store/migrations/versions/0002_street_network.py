"""Street network (walking) for coverage along streets.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0002_street_network_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0002_street_network_down.sql"))
