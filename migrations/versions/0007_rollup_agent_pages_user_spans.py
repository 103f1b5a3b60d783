"""agents' pages and user spans: each day's hits per agent and page; users' first/last hit

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 15:00:00

Days built before this revision (layout 3 or older) have no agent pages, nor the
first and last hit of each user-day: the agents report, and retention on sites
outside UTC, read them raw until `refresh_due` rebuilds them at layout 5.
"""

from alembic import op
import sqlalchemy as sa

import pulse.models.types  # noqa: F401  (custom column types)


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rollup_agent_pages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("agent_name", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=8), nullable=False),
        sa.Column("agent_category", sa.String(length=32), nullable=True),
        sa.Column("pathname", sa.String(length=1024), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("pageviews", sa.Integer(), nullable=False),
        sa.Column("first_seen", pulse.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen", pulse.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_rollup_agent_pages_site_day", "rollup_agent_pages", ["site_id", "day"]
    )
    with op.batch_alter_table("rollup_users") as batch:
        batch.add_column(
            sa.Column("first_seen", pulse.models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("last_seen", pulse.models.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("rollup_users") as batch:
        batch.drop_column("last_seen")
        batch.drop_column("first_seen")
    op.drop_index("ix_rollup_agent_pages_site_day", table_name="rollup_agent_pages")
    op.drop_table("rollup_agent_pages")
