"""Aggregates of events and visits: the seam between reports and storage.

Each function answers "these counts, grouped by this key" for a Query. Reports
only call these two. When the grouping is a named dimension (or none) that the
daily roll-ups cover (rollups.py), the pieces of the range with a fresh roll-up
(whole UTC days, or on a site in another zone their parts on either side of its
midnight) are read from `rollup_hits` / `rollup_visits`, the rest from the raw
`events` and `visits` tables, and the two are added: the same numbers, faster.

Every classification is read at once: the selected traffic through conditional
aggregates, and the human/agent/bot split beside it, so one query serves a
report and its per-classification columns.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, distinct, func, nulls_last, select
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics import rollups
from pulse.analytics.dimensions import EVENTS, VISITS
from pulse.analytics.expressions import BinaryOrder, PropText
from pulse.analytics.query import LABELS, Query
from pulse.analytics.sql import events_where, selected, visits_where
from pulse.extensions import db
from pulse.models import RollupHit, RollupVisit


def _both(first: Any, second: Any) -> Any:
    if first is None:
        return second
    return first & second


def _count_if(condition: Any) -> ColumnElement[int]:
    return func.count() if condition is None else func.count(case((condition, 1)))


def _distinct_if(condition: Any, column: ColumnElement[Any]) -> ColumnElement[int]:
    if condition is None:
        return func.count(distinct(column))
    return func.count(distinct(case((condition, column))))


def _sum_if(condition: Any, column: ColumnElement[Any]) -> ColumnElement[int]:
    value = column if condition is None else case((condition, column), else_=0)
    return func.coalesce(func.sum(value), 0)


def _plain(value: Any) -> Any:
    """PostgreSQL sums of integers come back as Decimal; reports want int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _rows(statement: Any) -> list[dict[str, Any]]:
    return [
        {k: _plain(v) for k, v in row.items()} for row in db.session.execute(statement).mappings()
    ]


def _finish(
    statement: Any, key: Any, group: Any, rank: list[Any], limit: int | None, having: Any
) -> Any:
    if key is None:
        return statement
    statement = statement.group_by(group)
    if limit is not None:
        statement = (
            statement.having(having > 0)
            .order_by(*[r.desc() for r in rank], nulls_last(BinaryOrder(group).asc()))
            .limit(limit)
        )
    return statement


def event_counts(
    q: Query,
    key: ColumnElement[Any] | None = None,
    *,
    limit: int | None = None,
    sessions: bool = False,
    dimension: str | None = None,
    interval: str | None = None,
) -> list[dict[str, Any]]:
    """Hits grouped by `key` (an expression over events): visitors, pageviews, events.

    With `limit`, only groups with selected traffic, the busiest first. Also
    `<label>_visitors` and `<label>_pageviews` for every label, whatever the
    classification, and with `sessions` the distinct sessions seen. `dimension`
    names what `key` is (a dimension of dimensions.py), or `interval` says it is
    `sql.bucket_key` of that interval, so roll-ups may answer.
    """
    if not sessions and (key is None or dimension is not None or interval is not None):
        parts = _hit_parts(q, key, dimension, interval)
        if parts is not None:
            return _combine(parts, key is not None, limit, "pageviews")
    return _raw_event_counts(q, key, limit=limit, sessions=sessions)


Rows = list[dict[str, Any]]


def _hit_parts(
    q: Query, key: ColumnElement[Any] | None, dimension: str | None, interval: str | None
) -> list[Rows] | None:
    """event_counts as parts to add up: the roll-ups of whole days, the current day's
    roll-up with the shares of its visitors seen since the cut swapped (rollups.py),
    and the rest raw. None when roll-ups answer none of it."""
    grouping = rollups.DAY if interval else dimension

    def rolled(found: list[rollups.Piece]) -> Rows:
        rows = rollups.hit_counts(q, grouping, found)
        return rollups.by_piece_bucket(rows, q, interval, found) if interval else rows

    def open_day(part: Query) -> list[Rows] | None:
        cut = rollups.open_cut(part)
        if cut is None:
            return None
        pieces = _open_pieces(q, part, cut, grouping, interval, RollupHit)
        if pieces is None:
            return None
        # With HEAD and TAIL, the HEAD is whole: only the TAIL has hits since the cut.
        since = part if len(pieces) == 1 else part.window(pieces[-1].start, part.end)
        return [rolled(pieces), *_swapped(since, cut, key)]

    pieces = _covered(q, dimension, interval, rollups.HIT_DIMENSIONS, RollupHit)
    return _parts(q, pieces, rolled, open_day, lambda part: _raw_event_counts(part, key))


def _parts(
    q: Query,
    pieces: list[rollups.Piece] | None,
    rolled: Callable[[list[rollups.Piece]], Rows],
    open_day: Callable[[Query], list[Rows] | None],
    raw: Callable[[Query], Rows],
) -> list[Rows] | None:
    """The parts of a range to add up: the roll-up `pieces`, and each span they leave
    as a day not over (`open_day`, None when it cannot answer) or `raw`. None when
    roll-ups answer none of it (`pieces` None: not this question at all)."""
    if pieces is None:
        return None
    parts = [rolled(pieces)] if pieces else []
    for part in rollups.not_covered(q, rollups.spans(pieces)):
        today = open_day(part)
        parts += today if today is not None else [raw(part)]
    return parts if len(parts) > 1 or pieces else None


def _open_pieces(
    q: Query,
    part: Query,
    cut: datetime,
    grouping: str | None,
    interval: str | None,
    table: Any,
) -> list[rollups.Piece] | None:
    """The pieces of the roll-up of a day not over (`part`, from its midnight, `cut`)
    that answer: the day whole, or in a series whose bucket changes within the day (a
    site in another zone) its HEAD and its TAIL up to the cut, in two buckets. None
    when the day must be read raw."""
    whole = rollups.day_piece(part)
    if rollups.by_client(q, grouping) and not rollups.partitioned(table, q, whole):
        return None
    if rollups.one_bucket(q, interval, part.start, part.end):
        return whole
    halves = rollups.open_halves(part, cut)
    return list(halves) if halves is not None else None


def _swapped(part: Query, cut: datetime, key: ColumnElement[Any] | None) -> list[Any]:
    """The hits in `part` of the visitors seen since the cut, less their hits before it."""
    tail = rollups.since_cut(part, cut)
    if tail is None:
        return []
    before = _raw_event_counts(part.window(part.start, cut), key, also=tail)
    return [_raw_event_counts(part, key, also=tail), _negated(before)]


def _negated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows to subtract in _combine: every count negated, the group kept."""
    return [{k: v if k == "g" else -_plain(v or 0) for k, v in row.items()} for row in rows]


def _raw_event_counts(
    q: Query,
    key: ColumnElement[Any] | None = None,
    *,
    limit: int | None = None,
    sessions: bool = False,
    also: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """event_counts from the raw events table (of the hits meeting `also` too)."""
    columns = [EVENTS.c.visitor_id, EVENTS.c.name, EVENTS.c.label, EVENTS.c.session_id]
    if key is not None:
        columns.append(key.label("g"))
    sub = select(*columns).where(*events_where(q), *(also or [])).subquery()
    chosen = selected(sub.c.label, q.labels)
    pageview = sub.c.name == "pageview"
    visitors = _distinct_if(chosen, sub.c.visitor_id)
    pageviews = _count_if(_both(chosen, pageview))
    metrics = [
        visitors.label("visitors"),
        pageviews.label("pageviews"),
        _count_if(_both(chosen, sub.c.name != "pageview")).label("events"),
    ]
    if sessions:
        metrics.append(_distinct_if(chosen, sub.c.session_id).label("sessions"))
    for label in LABELS:
        is_label = sub.c.label == label
        metrics.append(_distinct_if(is_label, sub.c.visitor_id).label(f"{label}_visitors"))
        metrics.append(_count_if(is_label & pageview).label(f"{label}_pageviews"))
    group = sub.c.g if key is not None else None
    statement = select(*([group] if key is not None else []), *metrics)
    return _rows(_finish(statement, key, group, [visitors, pageviews], limit, visitors))


def visit_counts(
    q: Query,
    key: ColumnElement[Any] | None = None,
    *,
    limit: int | None = None,
    dimension: str | None = None,
    interval: str | None = None,
    visitors: bool = True,
) -> list[dict[str, Any]]:
    """Visits started in the range grouped by `key` (an expression over visits).

    visitors, sessions, pageviews, bounces, duration (sum of seconds), scored and
    score (sum of engagement scores), and `<label>_visitors` / `<label>_sessions`.
    `dimension` or `interval` name what `key` is, as for event_counts. Without
    `visitors` the visitor counts are left out (they cost the raw query most).
    """
    if key is None or dimension is not None or interval is not None:
        parts = _visit_parts(q, key, dimension, interval, visitors)
        if parts is not None:
            return _combine(parts, key is not None, limit, "sessions")
    return _raw_visit_counts(q, key, limit=limit, visitors=visitors)


def _visit_parts(
    q: Query,
    key: ColumnElement[Any] | None,
    dimension: str | None,
    interval: str | None,
    visitors: bool,
) -> list[Rows] | None:
    """visit_counts as parts to add up, as _hit_parts: whole days' roll-ups, the
    current day's settled visits with the visitors seen since swapped, the rest raw."""
    grouping = rollups.DAY if interval else dimension

    def rolled(found: list[rollups.Piece]) -> Rows:
        rows = rollups.visit_counts(q, grouping, found)
        if interval is not None:
            rows = rollups.by_piece_bucket(rows, q, interval, found)
        return rows if visitors else [_without_visitors(row) for row in rows]

    def open_day(part: Query) -> list[Rows] | None:
        """The visits the day's roll-up holds (last seen before `settled`), with the
        visitors seen since then swapped in from the raw visits: all of their visits
        added, those the roll-up holds subtracted (they have not changed: see
        rollups.note_written). Everyone else is wholly in the roll-up."""
        found = rollups.open_settled(part)
        if found is None:
            return None
        cut, settled = found
        pieces = _open_pieces(q, part, cut, grouping, interval, RollupVisit)
        if pieces is None:
            return None
        swap = rollups.since_settled(part, settled)
        if swap is None:
            return [rolled(pieces)]
        held = [*swap, VISITS.c.last_seen_at < settled]
        return [
            rolled(pieces),
            _raw_visit_counts(part, key, visitors=visitors, also=swap),
            _negated(_raw_visit_counts(part, key, visitors=visitors, also=held)),
        ]

    def raw(part: Query) -> Rows:
        return _raw_visit_counts(part, key, visitors=visitors)

    pieces = _covered(q, dimension, interval, rollups.VISIT_DIMENSIONS, RollupVisit)
    return _parts(q, pieces, rolled, open_day, raw)


def _without_visitors(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.endswith("visitors")}


def _covered(
    q: Query,
    dimension: str | None,
    interval: str | None,
    dimensions: dict[str, str | None],
    table: Any,
) -> list[rollups.Piece] | None:
    """The roll-up pieces (of `table`) that answer, or None when roll-ups cannot
    answer this question at all (hourly buckets among them)."""
    if interval == "hour":
        return None
    grouping = rollups.DAY if interval else dimension
    if not rollups.usable(q, grouping, dimensions):
        return None
    pieces = rollups.pieces(q, interval)
    if pieces and rollups.by_client(q, grouping):
        pieces = rollups.partitioned(table, q, pieces)
    return pieces


def _combine(
    parts: list[list[dict[str, Any]]], grouped: bool, limit: int | None, second: str
) -> list[dict[str, Any]]:
    """Add the rows of disjoint days, then rank and cut them as the SQL would."""
    totals: dict[Any, dict[str, Any]] = {}
    for rows in parts:
        for row in rows:
            key = row.get("g") if grouped else None
            into = totals.setdefault(key, {"g": key} if grouped else {})
            for name, value in row.items():
                if name != "g":
                    into[name] = into.get(name, 0) + _plain(value or 0)
    rows = list(totals.values())
    if not grouped:
        return rows
    if limit is not None:
        rows = [r for r in rows if r["visitors"] > 0]
        rows.sort(key=lambda r: (-r["visitors"], -r[second], r["g"] is None, r["g"] or ""))
        rows = rows[:limit]
    return rows


def _raw_visit_counts(
    q: Query,
    key: ColumnElement[Any] | None = None,
    *,
    limit: int | None = None,
    visitors: bool = True,
    also: list[Any] | None = None,
) -> list[dict[str, Any]]:
    """visit_counts from the raw visits table (of the visits meeting `also` too)."""
    columns = [
        VISITS.c.visitor_id,
        VISITS.c.label,
        VISITS.c.pageviews,
        VISITS.c.is_bounce,
        VISITS.c.duration_s,
        VISITS.c.engagement_score,
    ]
    if key is not None:
        columns.append(key.label("g"))
    sub = select(*columns).where(*visits_where(q), *(also or [])).subquery()
    chosen = selected(sub.c.label, q.labels)
    sessions = _count_if(chosen)
    scored = sub.c.engagement_score.is_not(None)
    metrics = [
        sessions.label("sessions"),
        _sum_if(chosen, sub.c.pageviews).label("pageviews"),
        _count_if(_both(chosen, sub.c.is_bounce.is_(True))).label("bounces"),
        _sum_if(chosen, sub.c.duration_s).label("duration"),
        _count_if(_both(chosen, scored)).label("scored"),
        func.coalesce(
            func.sum(case((_both(chosen, scored), sub.c.engagement_score), else_=0.0)), 0.0
        ).label("score"),
    ]
    rank = [sessions]
    for label in LABELS:
        metrics.append(_count_if(sub.c.label == label).label(f"{label}_sessions"))
    if visitors:
        distinct_visitors = _distinct_if(chosen, sub.c.visitor_id)
        rank.insert(0, distinct_visitors)
        metrics.append(distinct_visitors.label("visitors"))
        for label in LABELS:
            is_label = sub.c.label == label
            metrics.append(_distinct_if(is_label, sub.c.visitor_id).label(f"{label}_visitors"))
    group = sub.c.g if key is not None else None
    statement = select(*([group] if key is not None else []), *metrics)
    return _rows(_finish(statement, key, group, rank, limit, rank[0]))


def first_event_at(site_id: int) -> Any:
    """The time of the site's first event (for period=all), or None."""
    return db.session.scalar(select(func.min(EVENTS.c.ts)).where(EVENTS.c.site_id == site_id))


ELEMENT_FIELDS = ("selector", "tag", "text", "href")


def element_clicks(q: Query, limit: int) -> list[dict[str, Any]]:
    """Element clicks (pulse.js `element_click`) grouped by CSS selector, most clicked first.

    Each row: selector, tag, text and href (one seen value of each), clicks and
    visitors of the selected traffic.
    """
    fields = [PropText(EVENTS.c.props, f"element_{name}").label(name) for name in ELEMENT_FIELDS]
    sub = (
        select(EVENTS.c.visitor_id, EVENTS.c.label, *fields)
        .where(*events_where(q), EVENTS.c.name == "element_click")
        .subquery()
    )
    chosen = selected(sub.c.label, q.labels)
    clicks = _count_if(chosen)
    statement = (
        select(
            sub.c.selector,
            *[func.max(sub.c[name]).label(name) for name in ELEMENT_FIELDS[1:]],
            clicks.label("clicks"),
            _distinct_if(chosen, sub.c.visitor_id).label("visitors"),
        )
        .group_by(sub.c.selector)
        .having(clicks > 0)
        .order_by(clicks.desc(), nulls_last(BinaryOrder(sub.c.selector).asc()))
        .limit(limit)
    )
    return _rows(statement)
