"""The indexes a bulk import leaves to build after its commit, recorded until built
(``pending_index``), so that an import stopped in between does not leave a layer without
its search index for good: the next import builds what is pending.

Revision ID: 0020
Revises: 0019
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0020_pending_indexes_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0020_pending_indexes_down.sql"))
