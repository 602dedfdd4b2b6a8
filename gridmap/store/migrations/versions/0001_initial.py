"""Initial schema: divisions, grids with version history, households, facilities,
incidents and grid workers.

Revision ID: 0001
Revises:
"""

from importlib.resources import files

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _sql(name: str) -> str:
    return files("gridmap.store.sql").joinpath(name).read_text(encoding="utf-8")


def upgrade() -> None:
    op.execute(_sql("0001_initial_up.sql"))


def downgrade() -> None:
    op.execute(_sql("0001_initial_down.sql"))
