"""The basemap: building footprints beside the walking network, with change notices.

Revision ID: 0013
Revises: 0011
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0013_basemap_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0013_basemap_down.sql"))
