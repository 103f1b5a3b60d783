"""the current day's roll-up holds the visits that ended before `settled`

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:00:00

A day not over had no visits in its roll-up. Now its build at a cut also writes the
visits last seen before `settled` (the cut less the visit timeout: they can no
longer change), and records that moment; NULL where the roll-up holds none.
"""

from alembic import op
import sqlalchemy as sa

import pulse.models.types  # noqa: F401  (custom column types)


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("rollup_days") as batch:
        batch.add_column(
            sa.Column("settled", pulse.models.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("rollup_days") as batch:
        batch.drop_column("settled")
