"""Initial schema: divisions, grids with version history, households, facilities,
incidents and grid workers.

Revision ID: 0001
Revises:
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0001_initial_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0001_initial_down.sql"))
