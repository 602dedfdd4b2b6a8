"""Trigram index for address search.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0004_address_search_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0004_address_search_down.sql"))
