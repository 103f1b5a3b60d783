"""roll-up rows of the parts of a UTC day on either side of the site's midnight

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 19:30:00

`rollup_hits` and `rollup_visits` rows get a `part`: 0 the whole UTC day (every row
so far), 1 the hours before the site's local midnight, 2 the hours from it. The day
records that midnight in `rollup_days.split`, so a local day is the sum of two parts
of two UTC days.
"""

from alembic import op
import sqlalchemy as sa

import pulse.models.types  # noqa: F401  (custom column types)


revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("rollup_days") as batch:
        batch.add_column(
            sa.Column("split", pulse.models.types.UTCDateTime(timezone=True), nullable=True)
        )
    for table in ("rollup_hits", "rollup_visits"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("part", sa.SmallInteger(), nullable=False, server_default="0")
            )
        # Readers pick a part of each day: the index holds it.
        op.drop_index(f"ix_{table}_site_dim_day", table_name=table)
        op.create_index(f"ix_{table}_site_dim_day", table, ["site_id", "dim", "day", "part"])


def downgrade():
    for table in ("rollup_hits", "rollup_visits"):
        op.drop_index(f"ix_{table}_site_dim_day", table_name=table)
        op.create_index(f"ix_{table}_site_dim_day", table, ["site_id", "dim", "day"])
        with op.batch_alter_table(table) as batch:
            batch.drop_column("part")
    with op.batch_alter_table("rollup_days") as batch:
        batch.drop_column("split")
