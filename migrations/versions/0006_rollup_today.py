"""roll-up of today up to a cut: the hits of the current day before `cut`

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:40:00

A day with a `cut` holds the roll-up of its hits before that moment only (the day
is not over yet); readers add the hits after it. NULL is a whole day, as before.
"""

from alembic import op
import sqlalchemy as sa

import pulse.models.types  # noqa: F401  (custom column types)


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("rollup_days") as batch:
        batch.add_column(
            sa.Column("cut", pulse.models.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade():
    with op.batch_alter_table("rollup_days") as batch:
        batch.drop_column("cut")
