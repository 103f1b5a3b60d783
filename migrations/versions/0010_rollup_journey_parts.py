"""journeys of the parts of a UTC day on either side of the site's midnight

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:15:00

`rollup_journeys` rows get a `part` like `rollup_hits`: 0 the whole UTC day (every row
so far), 1 and 2 the hours before and from the site's local midnight, so a funnel
over a range of local days reads journeys for its first and last day too. Days are
rebuilt with them at roll-up layout 7.
"""

from alembic import op
import sqlalchemy as sa


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("rollup_journeys") as batch:
        batch.add_column(sa.Column("part", sa.SmallInteger(), nullable=False, server_default="0"))
    op.drop_index("ix_rollup_journeys_site_day", table_name="rollup_journeys")
    op.create_index(
        "ix_rollup_journeys_site_day", "rollup_journeys", ["site_id", "day", "label", "part"]
    )


def downgrade():
    op.drop_index("ix_rollup_journeys_site_day", table_name="rollup_journeys")
    op.create_index("ix_rollup_journeys_site_day", "rollup_journeys", ["site_id", "day", "label"])
    with op.batch_alter_table("rollup_journeys") as batch:
        batch.drop_column("part")
