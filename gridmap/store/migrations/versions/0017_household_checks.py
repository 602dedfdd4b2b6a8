"""Household checks a bulk load pays for on every row made cheaper, letting nothing more in:
the lon/lat check answers by bounding box for points well inside the limits (the exact test
for the rest), and the county code, the partition key checked when its partition is made,
is no longer matched against a regular expression on every row; the id compared byte by
byte (``COLLATE "C"``), which halves sorting it for the primary key.

Revision ID: 0017
Revises: 0015
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0017"
down_revision = "0015"  # 0016 is not used (an assignment table not built)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0017_household_checks_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0017_household_checks_down.sql"))
