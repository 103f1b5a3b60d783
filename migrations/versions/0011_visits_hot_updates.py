"""visits: updates in place (HOT) — the visitor index without last_seen_at, pages 80% full

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 19:05:00

Nearly every tracking event rewrites its visit's `last_seen_at`. While that column was
in an index, every such update wrote a new entry into all three indexes of `visits`.
Looking an open visit up by (site, visitor) alone finds the same rows (a visitor id
lives one day, so it has few visits), and with `last_seen_at` in no index and room
left on each page (fillfactor 80, PostgreSQL only), PostgreSQL can update the row in
place on its page (a heap-only tuple) without touching any index.
"""

from alembic import op


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_visits_site_visitor", "visits", ["site_id", "visitor_id"])
    op.drop_index("ix_visits_site_visitor_seen", table_name="visits")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE visits SET (fillfactor = 80)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE visits RESET (fillfactor)")
    op.create_index(
        "ix_visits_site_visitor_seen", "visits", ["site_id", "visitor_id", "last_seen_at"]
    )
    op.drop_index("ix_visits_site_visitor", table_name="visits")
