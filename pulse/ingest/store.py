"""`record(rows)`: the one way events are stored.

With REDIS_URL the rows go to a Redis list that workers drain in bulk (see
buffer.py), so a 202 costs one RPUSH; if Redis does not answer, the rows are
written to the database in the request instead, never dropped. Without Redis they
are always written in the request. Writing is idempotent: an event id seen before
for the site is skipped, so a retried request is not counted twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pulse.extensions import db
from pulse.ingest import buffer, sessions
from pulse.models import Event

log = logging.getLogger(__name__)
EVENT_COLUMNS = frozenset(c.name for c in Event.__table__.columns) - {"id"}


def record(rows: list[dict[str, Any]]) -> str:
    """Store rows durably; returns "buffered" or "stored"."""
    if not rows:
        return "stored"
    if current_app.config.get("REDIS_URL"):
        try:
            buffer.push(rows)
            return "buffered"
        except buffer.NotDurable:
            pass  # buffer.persists() has said so in the log
        except RedisError:
            log.warning("Redis unavailable: writing %d events directly", len(rows))
    write(rows)
    return "stored"


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
    fresh = _unseen(rows)
    if not fresh:
        return 0
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
    return len(values)
