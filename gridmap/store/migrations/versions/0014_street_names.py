"""Street names on the walking network's edges (OSM ``name``; the demo's generated streets),
for the basemap's street labels.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0014_street_names_up.sql"))


def downgrade() -> None:
    op.execute(read_sql("0014_street_names_down.sql"))
