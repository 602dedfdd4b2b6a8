"""Change notices (LISTEN/NOTIFY) for the in-process locate index and the tile cache.

Revision ID: 0003
Revises: 0002
"""

from importlib.resources import files

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _sql(name: str) -> str:
    return files("gridmap.store.sql").joinpath(name).read_text(encoding="utf-8")


def upgrade() -> None:
    op.execute(_sql("0003_notify_up.sql"))


def downgrade() -> None:
    op.execute(_sql("0003_notify_down.sql"))
