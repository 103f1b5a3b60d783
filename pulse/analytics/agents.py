"""What AI agents and bots read: every named agent, its pages, when it came, its trend.

An agent is a hit's `agent_name` (set by detection for agent and bot traffic).
Counts are hits (pageviews plus custom events) of the selected classification
(agent and bot by default) in the range and filters; `pages` is how many distinct
paths it read and `top_pages` the ones it read most; first and last seen are
within the range; the trend is hits per bucket of the site's calendar and the
change against the previous period of equal length. The label and category shown
are the most frequent among its hits. Names sort by hits, then code point order.

Whole days with agent-page roll-ups (`rollup_agent_pages`, built with the others
in rollups.py) are read from them, the rest of the range from raw hits: hits per
(agent, label, category, page) answer everything but visitors and the trend's
buckets, which the `agent` rows of `rollup_hits` answer.
Under filters everything is read raw.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics import rollups
from pulse.analytics.buckets import bucket_starts
from pulse.analytics.dimensions import EVENTS
from pulse.analytics.formatting import change
from pulse.analytics.query import LABELS, Query
from pulse.analytics.sql import bucket_key, events_where, in_days, selected
from pulse.errors import NotFound
from pulse.extensions import db
from pulse.models import RollupAgentPage
from pulse.models.rollup import AGENT_PAGES_LAYOUT

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


def _runs(q: Query) -> rollups.Runs:
    """The whole days of the range the agent-page roll-ups answer (none under filters)."""
    return [] if q.filters else rollups.covered(q, layout=AGENT_PAGES_LAYOUT)


def _rolled_where(q: Query, runs: rollups.Runs, names: list[str] | None) -> list[Any]:
    t = RollupAgentPage.__table__.c
    conditions = [t.site_id == q.site_id, in_days(t.day, runs)]
    chosen = selected(t.label, q.labels)
    if chosen is not None:
        conditions.append(chosen)
    if names is not None:
        conditions.append(t.agent_name.in_(names))
    return conditions


class _Page:
    """One agent's hits on one page with one label and category, summed over parts."""

    __slots__ = ("first", "hits", "last", "pageviews")

    def __init__(self) -> None:
        self.hits, self.pageviews = 0, 0
        self.first: datetime | None = None
        self.last: datetime | None = None

    def add(self, hits: int, pageviews: int, first: datetime, last: datetime) -> None:
        self.hits += int(hits)
        self.pageviews += int(pageviews)
        first, last = _aware(first), _aware(last)
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)


Pages = dict[tuple[str, str, str | None, str], _Page]  # (agent, label, category, page)


def _pages(q: Query, names: list[str] | None = None) -> Pages:
    """Hits per (agent, label, category, page) over the range: the roll-ups' whole days
    and the rest from raw hits (one grouped scan instead of one per question)."""
    runs = _runs(q)
    found: Pages = defaultdict(_Page)
    statements = []
    if runs:
        t = RollupAgentPage.__table__.c
        keys = [t.agent_name, t.label, t.agent_category, t.pathname]
        statements.append(
            select(
                *keys,
                func.sum(t.hits),
                func.sum(t.pageviews),
                func.min(t.first_seen),
                func.max(t.last_seen),
            )
            .where(*_rolled_where(q, runs, names))
            .group_by(*keys)
        )
    e = EVENTS.c
    keys = [e.agent_name, e.label, e.agent_category, e.pathname]
    for part in rollups.not_covered(q, runs):
        statements.append(
            select(
                *keys,
                func.count(),
                func.count(case((e.name == "pageview", 1))),
                func.min(e.ts),
                func.max(e.ts),
            )
            .where(*_where(part, names))
            .group_by(*keys)
        )
    for statement in statements:
        for name, label, category, page, hits, views, first, last in db.session.execute(statement):
            found[(name, label, category, page)].add(hits, views, first, last)
    return found


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _visitors(q: Query, names: list[str]) -> Counter[str]:
    """Distinct visitors per agent: per-day counts add up (visitor ids are daily)."""
    pieces = [] if q.filters else rollups.pieces(q)
    counts: Counter[str] = Counter()
    if pieces:
        for row in rollups.hit_counts(q, "agent", pieces):
            if row["g"] in names:
                counts[row["g"]] += int(row["visitors"])
    for part in rollups.not_covered(q, rollups.spans(pieces)):
        statement = (
            select(EVENTS.c.agent_name, func.count(distinct(EVENTS.c.visitor_id)))
            .where(*_where(part, names))
            .group_by(EVENTS.c.agent_name)
        )
        for name, visitors in db.session.execute(statement):
            counts[name] += visitors
    return counts


def _totals(pages: Pages) -> list[dict[str, Any]]:
    """Per agent, busiest first: hits, pageviews, the paths read, first and last seen."""
    totals: dict[str, dict[str, Any]] = {}
    for (name, _, _, path), page in pages.items():
        t = totals.setdefault(
            name,
            {"agent": name, "hits": 0, "pageviews": 0, "paths": set(), "first": None, "last": None},
        )
        t["hits"] += page.hits
        t["pageviews"] += page.pageviews
        t["paths"].add(path)
        t["first"] = page.first if t["first"] is None else min(t["first"], page.first)
        t["last"] = page.last if t["last"] is None else max(t["last"], page.last)
    return sorted(totals.values(), key=lambda t: (-t["hits"], t["agent"]))


def _dominant(pages: Pages) -> dict[str, tuple[str, str | None]]:
    """Each agent's most frequent (label, category); ties go to label order, then category."""
    hits: Counter[tuple[str, str, str | None]] = Counter()
    for (name, label, category, _), page in pages.items():
        hits[(name, label, category)] += page.hits
    best: dict[str, tuple[int, int, str, str]] = {}
    for (name, label, category), n in hits.items():
        rank = LABELS.index(label) if label in LABELS else len(LABELS)
        option = (-n, rank, category or "", label)
        if name not in best or option < best[name]:
            best[name] = option
    return {name: (o[3], o[2] or None) for name, o in best.items()}


def _page_hits(pages: Pages, name: str) -> dict[str, _Page]:
    """One agent's pages, every label and category summed."""
    merged: dict[str, _Page] = defaultdict(_Page)
    for (agent, _, _, path), page in pages.items():
        if agent == name:
            merged[path].add(page.hits, page.pageviews, page.first, page.last)
    return merged


def _top_pages(pages: Pages, name: str, limit: int) -> list[dict[str, Any]]:
    merged = _page_hits(pages, name)
    ranked = sorted(merged.items(), key=lambda item: (-item[1].hits, item[0]))[:limit]
    return [{"page": path, "hits": page.hits} for path, page in ranked]


def _trends(q: Query, names: list[str]) -> tuple[str, dict[str, dict[str, Any]]]:
    """Hits per bucket over the range, and the change against the previous period.

    Day, week and month buckets are sums of roll-up pieces (the `agent` rows of
    `rollup_hits`: whole UTC days, or their parts on either side of the site's
    midnight); hours, filtered ranges and the rest of the range come from raw hits.
    """
    interval = q.bucket_interval
    buckets = bucket_starts(q.tz, q.start, q.end, interval)
    series: dict[str, Counter[int]] = defaultdict(Counter)
    pieces = [] if q.filters else rollups.pieces(q, interval)
    if pieces:
        keys = rollups.piece_keys(q, interval, pieces)
        for name, day, part, hits in rollups.hits_per_piece(q, "agent", pieces, names):
            series[name][keys[(day, part)]] += hits
    for part in rollups.not_covered(q, rollups.spans(pieces)):
        key = bucket_key(EVENTS.c.ts, q, interval).label("b")
        statement = (
            select(EVENTS.c.agent_name, key, func.count())
            .where(*_where(part, names))
            .group_by(EVENTS.c.agent_name, key)
        )
        for name, bucket, hits in db.session.execute(statement):
            series[name][int(bucket)] += hits
    previous: Counter[str] = Counter()
    for (name, _, _, _), page in _pages(q.previous(), names).items():
        previous[name] += page.hits
    out = {}
    for name in names:
        points = [{"date": b.label, "hits": series[name][b.key]} for b in buckets]
        current = sum(p["hits"] for p in points)
        out[name] = {**change(current, previous.get(name, 0)), "series": points}
    return interval, out


def _rows(q: Query, pages: Pages, totals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    names = [t["agent"] for t in totals]
    if not names:
        return []
    kinds = _dominant(pages)
    visitors = _visitors(q, names)
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
                "visitors": visitors[name],
                "pages": len(t["paths"]),
                "top_pages": _top_pages(pages, name, TOP_PAGES),
                "first_seen": _iso(t["first"]),
                "last_seen": _iso(t["last"]),
                "trend": trends[name],
            }
        )
    return rows


def agents(q: Query) -> dict[str, Any]:
    """Every detected agent and bot (the busiest `q.limit`), with pages read and trend."""
    pages = _pages(q)
    totals = _totals(pages)
    return {
        "dimension": "agent",
        "interval": q.bucket_interval,
        "agents_seen": len(totals),
        "total_hits": sum(t["hits"] for t in totals),
        "rows": _rows(q, pages, totals[: q.limit]),
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
    pages = _pages(q, [name])
    rows = _rows(q, pages, _totals(pages))
    summary = rows[0] if rows else _empty(q, name)
    merged = sorted(_page_hits(pages, name).items(), key=lambda item: (-item[1].hits, item[0]))
    read = [
        {
            "page": path,
            "hits": page.hits,
            "pageviews": page.pageviews,
            "first_seen": _iso(page.first),
            "last_seen": _iso(page.last),
        }
        for path, page in merged[: q.limit]
    ]
    return {**summary, "interval": q.bucket_interval, "pages_read": read}


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
