"""`write(rows)`: events into the database, with their visits, idempotently.

Called by the drainer for buffered rows (buffer.py) and by accept.py in the request
when there is no durable Redis. An event id seen before for the site is skipped, so
a retried request is not counted twice.

`write` takes the bulk path of bulk.py on PostgreSQL (COPY, no ORM: the drainer's
cost per event) and the ORM path below elsewhere; `write_orm` stays the reference
the bulk path is tested against.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pulse.analytics import rollups, stream
from pulse.extensions import db
from pulse.ingest import bulk, sessions
from pulse.models import Event

EVENT_COLUMNS = frozenset(c.name for c in Event.__table__.columns) - {"id"}


def _unseen(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop rows whose event id the site already has (and repeats within the batch)."""
    by_site: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_site[row["site_id"]].append(row)
    fresh: list[dict[str, Any]] = []
    for site_id, site_rows in by_site.items():
        uids = {r["event_uid"] for r in site_rows}
        seen = set(
            db.session.scalars(
                select(Event.event_uid).where(Event.site_id == site_id, Event.event_uid.in_(uids))
            )
        )
        for row in site_rows:
            if row["event_uid"] not in seen:
                seen.add(row["event_uid"])
                fresh.append(row)
    return fresh


def write(rows: list[dict[str, Any]]) -> int:
    """Insert new events and update their visits in the current transaction."""
    if not rows:
        return 0
    if db.session.get_bind().dialect.name == "postgresql":
        stored = bulk.write(rows)
    else:
        stored = _write_orm_rows(rows)
    if stored:
        # Only what this call stored: a retried batch is not announced twice.
        rollups.note_written(stored)
        stream.publish(stored)
    return len(stored)


def write_orm(rows: list[dict[str, Any]]) -> int:
    """`write` through the ORM and Core: SQLite, and the reference for bulk.write."""
    return len(_write_orm_rows(rows))


def _write_orm_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fresh = _unseen(rows)
    if not fresh:
        return []
    sessions.assign(fresh)
    db.session.flush()
    values = [{k: v for k, v in row.items() if k in EVENT_COLUMNS} for row in fresh]
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        statement = pg_insert(Event.__table__).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite_insert(Event.__table__).on_conflict_do_nothing()
    else:  # pragma: no cover - other databases are not supported
        statement = insert(Event.__table__)
    db.session.execute(statement, values)
    return fresh
