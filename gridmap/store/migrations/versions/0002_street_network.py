"""Street network (walking) for coverage along streets.

Revision ID: 0002
Revises: 0001
"""

from importlib.resources import files

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _sql(name: str) -> str:
    return files("gridmap.store.sql").joinpath(name).read_text(encoding="utf-8")


def upgrade() -> None:
    op.execute(_sql("0002_street_network_up.sql"))


def downgrade() -> None:
    op.execute(_sql("0002_street_network_down.sql"))
