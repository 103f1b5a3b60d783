"""roll-up journeys: each visitor-day's hits in order, for funnels

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 11:00:00

Days built before this revision have no journeys (`rollup_days.journeys` false):
funnels read them raw until `refresh_due` rebuilds them at layout 3.
"""

from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rollup_items",
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("site_id", "code"),
        sa.UniqueConstraint("site_id", "name", "path", name="uq_rollup_items_name_path"),
    )
    op.create_table(
        "rollup_journeys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("label", sa.String(length=8), nullable=False),
        sa.Column("journey", sa.Text(), nullable=False),
        sa.Column("visitors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rollup_journeys_site_day", "rollup_journeys", ["site_id", "day", "label"])
    with op.batch_alter_table("rollup_days") as batch:
        batch.add_column(
            sa.Column("journeys", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade():
    with op.batch_alter_table("rollup_days") as batch:
        batch.drop_column("journeys")
    op.drop_index("ix_rollup_journeys_site_day", table_name="rollup_journeys")
    op.drop_table("rollup_journeys")
    op.drop_table("rollup_items")
