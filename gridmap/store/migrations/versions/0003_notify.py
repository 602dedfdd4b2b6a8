"""Change notices (LISTEN/NOTIFY) for the in-process locate index and the tile cache.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0003_notify_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0003_notify_down.sql"))
