"""Who published each grid version, who approved it, which version it restored.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0009_grid_version_author_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0009_grid_version_author_down.sql"))
