"""roll-up layout: days built before `@client` rows existed are rebuilt

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 11:20:00

Days built before this revision are layout 1. They keep answering what they can
while `refresh_due` rebuilds them at the current layout, newest first.
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("rollup_days") as batch:
        batch.add_column(sa.Column("layout", sa.SmallInteger(), nullable=False, server_default="1"))


def downgrade():
    with op.batch_alter_table("rollup_days") as batch:
        batch.drop_column("layout")
