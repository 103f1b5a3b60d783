"""What AI agents and bots read: every named agent, its pages, when it came, its trend.

An agent is a hit's `agent_name` (set by detection for agent and bot traffic).
Counts are hits (pageviews plus custom events) of the selected classification
(agent and bot by default) in the range and filters; `pages` is how many distinct
paths it read and `top_pages` the ones it read most; first and last seen are
within the range; the trend is hits per bucket of the site's calendar and the
change against the previous period of equal length. The label and category shown
are the most frequent among its hits. Names sort by hits, then code point order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics.buckets import bucket_starts
from pulse.analytics.dimensions import EVENTS
from pulse.analytics.formatting import change
from pulse.analytics.query import LABELS, Query
from pulse.analytics.sql import bucket_key, events_where, selected
from pulse.errors import NotFound
from pulse.extensions import db

TOP_PAGES = 5


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _where(q: Query, names: list[str] | None = None) -> list[ColumnElement[bool]]:
    conditions = [*events_where(q), EVENTS.c.agent_name.is_not(None)]
    chosen = selected(EVENTS.c.label, q.labels)
    if chosen is not None:
        conditions.append(chosen)
    if names is not None:
        conditions.append(EVENTS.c.agent_name.in_(names))
    return conditions


def _totals(q: Query, names: list[str] | None = None) -> list[dict[str, Any]]:
    """Per agent: hits, pageviews, visitors, distinct pages, first and last seen."""
    statement = (
        select(
            EVENTS.c.agent_name.label("agent"),
            func.count().label("hits"),
            func.count(case((EVENTS.c.name == "pageview", 1))).label("pageviews"),
            func.count(distinct(EVENTS.c.visitor_id)).label("visitors"),
            func.count(distinct(EVENTS.c.pathname)).label("pages"),
            func.min(EVENTS.c.ts).label("first_seen"),
            func.max(EVENTS.c.ts).label("last_seen"),
        )
        .where(*_where(q, names))
        .group_by(EVENTS.c.agent_name)
    )
    return [dict(r) for r in db.session.execute(statement).mappings()]


def _grouped(q: Query, names: list[str], *keys: ColumnElement[Any]) -> list[tuple[Any, ...]]:
    """(agent, *keys, hits) rows for the named agents."""
    statement = (
        select(EVENTS.c.agent_name, *keys, func.count())
        .where(*_where(q, names))
        .group_by(EVENTS.c.agent_name, *keys)
    )
    return [tuple(r) for r in db.session.execute(statement)]


def _dominant(q: Query, names: list[str]) -> dict[str, tuple[str, str | None]]:
    """Each agent's most frequent (label, category); ties go to label order, then category."""
    counts: dict[str, list[tuple[int, int, str, str | None]]] = defaultdict(list)
    for name, label, category, hits in _grouped(q, names, EVENTS.c.label, EVENTS.c.agent_category):
        rank = LABELS.index(label) if label in LABELS else len(LABELS)
        counts[name].append((-hits, rank, category or "", label))
    out = {}
    for name, options in counts.items():
        best = min(options)
        out[name] = (best[3], best[2] or None)
    return out


def _top_pages(q: Query, names: list[str], limit: int) -> dict[str, list[dict[str, Any]]]:
    pages: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for name, path, hits in _grouped(q, names, EVENTS.c.pathname):
        pages[name].append((-hits, path))
    return {
        name: [{"page": path, "hits": -neg} for neg, path in sorted(found)[:limit]]
        for name, found in pages.items()
    }


def _trends(q: Query, names: list[str]) -> tuple[str, dict[str, dict[str, Any]]]:
    """Hits per bucket over the range, and the change against the previous period."""
    interval = q.bucket_interval
    buckets = bucket_starts(q.tz, q.start, q.end, interval)
    series: dict[str, Counter[int]] = defaultdict(Counter)
    for name, key, hits in _grouped(q, names, bucket_key(EVENTS.c.ts, q, interval).label("b")):
        series[name][int(key)] += hits
    before = q.previous()
    previous = {name: hits for name, hits in _grouped(before, names)}
    out = {}
    for name in names:
        points = [{"date": b.label, "hits": series[name][b.key]} for b in buckets]
        current = sum(p["hits"] for p in points)
        out[name] = {**change(current, previous.get(name, 0)), "series": points}
    return interval, out


def _rows(q: Query, totals: list[dict[str, Any]], pages_limit: int) -> list[dict[str, Any]]:
    names = [t["agent"] for t in totals]
    if not names:
        return []
    kinds = _dominant(q, names)
    tops = _top_pages(q, names, pages_limit)
    _, trends = _trends(q, names)
    rows = []
    for t in totals:
        name = t["agent"]
        label, category = kinds.get(name, (None, None))
        rows.append(
            {
                "agent": name,
                "value": name,
                "name": name,
                "category": category,
                "label": label,
                "hits": t["hits"],
                "pageviews": t["pageviews"],
                "events": t["hits"] - t["pageviews"],
                "visitors": t["visitors"],
                "pages": t["pages"],
                "top_pages": tops.get(name, []),
                "first_seen": _iso(t["first_seen"]),
                "last_seen": _iso(t["last_seen"]),
                "trend": trends[name],
            }
        )
    return rows


def agents(q: Query) -> dict[str, Any]:
    """Every detected agent and bot (the busiest `q.limit`), with pages read and trend."""
    totals = sorted(_totals(q), key=lambda t: (-t["hits"], t["agent"]))
    rows = _rows(q, totals[: q.limit], TOP_PAGES)
    return {
        "dimension": "agent",
        "interval": q.bucket_interval,
        "agents_seen": len(totals),
        "total_hits": sum(t["hits"] for t in totals),
        "rows": rows,
    }


def _known(site_id: int, name: str) -> bool:
    statement = (
        select(EVENTS.c.id).where(EVENTS.c.site_id == site_id, EVENTS.c.agent_name == name).limit(1)
    )
    return db.session.execute(statement).first() is not None


def agent(q: Query, name: str) -> dict[str, Any]:
    """One agent: its summary and every page it read (the top `q.limit`), busiest first.

    404 when the site has never seen the name; zeros when it has, but not in the range.
    """
    if not _known(q.site_id, name):
        raise NotFound("Agent not found.")
    totals = _totals(q, [name])
    rows = _rows(q, totals, TOP_PAGES)
    summary = rows[0] if rows else _empty(q, name)
    statement = (
        select(
            EVENTS.c.pathname,
            func.count(),
            func.count(case((EVENTS.c.name == "pageview", 1))),
            func.min(EVENTS.c.ts),
            func.max(EVENTS.c.ts),
        )
        .where(*_where(q, [name]))
        .group_by(EVENTS.c.pathname)
    )
    found = sorted(db.session.execute(statement), key=lambda r: (-r[1], r[0]))
    pages = [
        {
            "page": path,
            "hits": hits,
            "pageviews": views,
            "first_seen": _iso(first),
            "last_seen": _iso(last),
        }
        for path, hits, views, first, last in found[: q.limit]
    ]
    return {**summary, "interval": q.bucket_interval, "pages_read": pages}


def _empty(q: Query, name: str) -> dict[str, Any]:
    _, trends = _trends(q, [name])
    return {
        "agent": name,
        "value": name,
        "name": name,
        "category": None,
        "label": None,
        "hits": 0,
        "pageviews": 0,
        "events": 0,
        "visitors": 0,
        "pages": 0,
        "top_pages": [],
        "first_seen": None,
        "last_seen": None,
        "trend": trends[name],
    }
