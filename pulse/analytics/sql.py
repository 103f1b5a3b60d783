"""WHERE clauses and bucket keys of a Query, in SQLAlchemy Core (SQLite and PostgreSQL).

Events are "hits" (pageviews and custom events; `session_end` is bookkeeping).
An event matches a session-level filter (source, channel, ...) when its visit
does; a visit matches a hit-level filter (page, event, property) when one of its
hits matches all of them. The range always bounds the indexed time column
(events: site_id+ts, visits: site_id+started_at).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, exists, literal, or_, select
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics.buckets import month_starts, offset_segments
from pulse.analytics.dimensions import EVENTS, VISITS
from pulse.analytics.expressions import EpochSeconds
from pulse.analytics.query import Query

HIT = EVENTS.c.name != "session_end"


def match(expr: ColumnElement[Any], values: tuple[str | None, ...]) -> ColumnElement[bool]:
    """expr equals one of the values; None matches NULL."""
    concrete = [v for v in values if v is not None]
    parts: list[ColumnElement[bool]] = []
    if concrete:
        parts.append(expr == concrete[0] if len(concrete) == 1 else expr.in_(concrete))
    if len(concrete) < len(values):
        parts.append(expr.is_(None))
    return parts[0] if len(parts) == 1 else or_(*parts)


def in_days(day: ColumnElement[Any], runs: list[tuple[datetime, datetime]]) -> ColumnElement[bool]:
    """A roll-up table's `day` column within runs of whole UTC days ([start, end) midnights)."""
    return or_(*[and_(day >= start.date(), day < end.date()) for start, end in runs])


def selected(column: ColumnElement[str], labels: tuple[str, ...] | None) -> Any:
    """The classification condition on a label column, or None for all traffic."""
    if labels is None:
        return None
    return column == labels[0] if len(labels) == 1 else column.in_(labels)


def events_where(q: Query) -> list[ColumnElement[bool]]:
    """Hits of the site in the range that pass the filters (every classification)."""
    conditions = [EVENTS.c.site_id == q.site_id, EVENTS.c.ts >= q.start, EVENTS.c.ts < q.end, HIT]
    session = []
    for f in q.filters:
        if f.dimension.session_scoped:
            session.append(match(f.dimension.on_visits(), f.values))
        else:
            conditions.append(match(f.dimension.on_events(), f.values))
    if session:
        visit_ids = select(VISITS.c.id).where(VISITS.c.site_id == q.site_id, *session)
        conditions.append(EVENTS.c.session_id.in_(visit_ids))
    return conditions


def visits_where(q: Query) -> list[ColumnElement[bool]]:
    """Visits of the site started in the range that pass the filters (every classification)."""
    conditions = [
        VISITS.c.site_id == q.site_id,
        VISITS.c.started_at >= q.start,
        VISITS.c.started_at < q.end,
    ]
    on_hits = []
    for f in q.filters:
        if f.dimension.visit_column is not None:
            conditions.append(match(f.dimension.on_visits(), f.values))
        else:
            on_hits.append(match(f.dimension.on_events(), f.values))
    if on_hits:
        # A visit's hits are never earlier than its start: the bound only helps the index.
        conditions.append(
            exists().where(
                EVENTS.c.site_id == q.site_id,
                EVENTS.c.session_id == VISITS.c.id,
                EVENTS.c.ts >= q.start,
                HIT,
                and_(*on_hits),
            )
        )
    return conditions


def bucket_key(column: ColumnElement[Any], q: Query, interval: str) -> ColumnElement[int]:
    """The integer bucket of a timestamp column; `buckets.key_of` is its Python twin."""
    if interval == "month":
        months = month_starts(q.tz, q.start, q.end)
        whens = [(column < boundary, index - 1) for index, boundary in enumerate(months) if index]
        return case(*whens, else_=len(months) - 1) if whens else literal(0)
    segments = offset_segments(q.tz, q.start, q.end)
    offset: ColumnElement[int]
    if len(segments) == 1:
        offset = literal(segments[0][1])
    else:
        whens = [(column < until, seconds) for until, seconds in segments[:-1]]
        offset = case(*whens, else_=segments[-1][1])
    local = EpochSeconds(column) + offset
    if interval == "hour":
        return local // 3600 * 3600 - offset
    if interval == "day":
        return local // 86400
    return (local // 86400 + 3) // 7
