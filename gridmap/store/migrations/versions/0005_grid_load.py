"""Households and residents per grid, kept by assignment.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0005_grid_load_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0005_grid_load_down.sql"))
