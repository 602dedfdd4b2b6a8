"""Points left without a grid although a grid holds them — households, facilities and
incidents imported before imports assigned their points and never re-assigned since — get
their grid by the rule (the lowest-coded exclusive grid, else comprehensive, whose polygon
holds the point), the per-grid counts and a case's community and township with them. From
here on every stored point is assigned as it is written, so a publish need only look at the
area it redraws (``assign_read_area.sql``) instead of every point in no grid.

Down keeps the assignments: they are what ``gridmap assign`` would store (derived data).

Revision ID: 0019
Revises: 0018
"""

from alembic import op

from gridmap.store.sqlfiles import read_sql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("0019_assign_unassigned_up.sql"))


def downgrade() -> None:
    pass  # the grids stored are those the rule gives: nothing to undo
