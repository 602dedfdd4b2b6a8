"""API keys: one per app or person, acting as an account; only the key's hash is kept.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0008_api_keys_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0008_api_keys_down.sql"))
