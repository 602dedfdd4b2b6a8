"""Drafts (plans) of a community's or township's grids: the draft grids and workers, the
edit log for undo and redo, the base versions, a revision for optimistic locking.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0010_drafts_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0010_drafts_down.sql"))
