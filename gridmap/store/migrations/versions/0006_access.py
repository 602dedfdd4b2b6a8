"""Access: accounts, grants, sessions, sign-in throttling, audit log, household contacts.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0006_access_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0006_access_down.sql"))
