"""Households partitioned by county code (declarative LIST partitioning on ``county_code``,
primary key ``(id, county_code)``); existing rows move into their county's partition.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0015_households_by_county_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0015_households_by_county_down.sql"))
