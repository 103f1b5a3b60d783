"""Explorers: the raw event log, the list of visits, one visit's events, properties.

Aggregates go through `raw` (the roll-up seam); the log and the visit list are rows,
so they read `events` / `visits` here, bounded by the same `events_where` /
`visits_where` conditions as every report, newest first, `limit` rows at a time.
A `cursor` (returned as `next_cursor` when a page is full) continues after the
last row, so equal timestamps are never skipped (seed 002 pages with `since`,
which still works: the range parameters bound every page).

Nothing here returns what identifies a person: no IP (never stored), no visitor
id, no user id, no user agent, no full referrer URL.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, case, or_, select

from pulse.analytics import raw
from pulse.analytics.dimensions import EVENTS, VISITS
from pulse.analytics.formatting import rate, split
from pulse.analytics.query import Query
from pulse.analytics.sql import events_where, selected, visits_where
from pulse.errors import NotFound, ValidationFailed
from pulse.extensions import db

MAX_SESSION_EVENTS = 1000
PROPERTY_SAMPLE = 50_000
TOP_VALUES = 10
MAX_VALUE_TEXT = 200
# Seed 002's session duration histogram: (label, from seconds, below seconds).
DURATION_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-10s", 0, 10),
    ("10-30s", 10, 30),
    ("30-60s", 30, 60),
    ("1-3m", 60, 180),
    ("3-10m", 180, 600),
    ("10-30m", 600, 1800),
    ("30m+", 1800, None),
)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, as every report shows instants."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def site_zone(name: str | None) -> ZoneInfo:
    """A site's zone as the reports read it: UTC when the stored name is unknown."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).isoformat()


# Cursors --------------------------------------------------------------------------


def encode_cursor(moment: datetime, row_id: Any) -> str:
    """An opaque position after (moment, id) in newest-first order."""
    micros = int(moment.astimezone(UTC).timestamp() * 1_000_000)
    return base64.urlsafe_b64encode(f"{micros}:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(raw_cursor: str) -> tuple[datetime, str]:
    """(moment, id) of a cursor; a 422 naming `cursor` when it is not one of ours."""
    try:
        padded = raw_cursor + "=" * (-len(raw_cursor) % 4)
        micros, row_id = base64.urlsafe_b64decode(padded.encode()).decode().split(":", 1)
        moment = datetime.fromtimestamp(int(micros) / 1_000_000, UTC)
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError, OSError) as exc:
        raise ValidationFailed(
            "Invalid query parameters.", errors={"cursor": ["Use a next_cursor value as given."]}
        ) from exc
    if not row_id or len(row_id) > 64:
        raise ValidationFailed(
            "Invalid query parameters.", errors={"cursor": ["Use a next_cursor value as given."]}
        )
    return moment, row_id


def _after(ts: Any, ident: Any, cursor: str | None, numeric: bool) -> Any:
    if not cursor:
        return None
    moment, row_id = decode_cursor(cursor)
    if numeric:
        if not row_id.isdigit() or len(row_id) > 18:
            raise ValidationFailed(
                "Invalid query parameters.",
                errors={"cursor": ["Use a next_cursor value as given."]},
            )
        row_key: Any = int(row_id)
    else:
        row_key = row_id
    return or_(ts < moment, and_(ts == moment, ident < row_key))


# The event log --------------------------------------------------------------------


def _arrival_and_client(row: Any) -> dict[str, Any]:
    """Where a hit or visit came from and what sent it: the columns events and visits share."""
    return {
        "source": row.source,
        "channel": row.channel,
        "referrer": row.referrer_host,
        "utm_source": row.utm_source,
        "utm_medium": row.utm_medium,
        "utm_campaign": row.utm_campaign,
        "country": row.country,
        "device": row.device,
        "browser": row.browser,
        "os": row.os,
        "classification": row.label,
        "agent": row.agent_name,
        "agent_category": row.agent_category,
    }


def _event(row: Any, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "id": row.event_uid,
        "event": row.name,
        "page": row.pathname,
        "hostname": row.hostname,
        "timestamp": iso(row.ts),
        "local_time": _local(row.ts, tz),
        "session_id": row.session_id,
        "properties": row.props or {},
        **_arrival_and_client(row),
    }


EVENT_COLUMNS = (
    "id",
    "event_uid",
    "name",
    "pathname",
    "hostname",
    "ts",
    "session_id",
    "props",
    "source",
    "channel",
    "referrer_host",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
    "label",
    "agent_name",
    "agent_category",
)


def events(q: Query, *, cursor: str | None = None, session_id: str | None = None) -> dict[str, Any]:
    """The newest `q.limit` hits of the range that pass the filters and classification."""
    conditions = list(events_where(q))
    chosen = selected(EVENTS.c.label, q.labels)
    if chosen is not None:
        conditions.append(chosen)
    if session_id:
        conditions.append(EVENTS.c.session_id == session_id)
    after = _after(EVENTS.c.ts, EVENTS.c.id, cursor, numeric=True)
    if after is not None:
        conditions.append(after)
    statement = (
        select(*[EVENTS.c[c] for c in EVENT_COLUMNS])
        .where(*conditions)
        .order_by(EVENTS.c.ts.desc(), EVENTS.c.id.desc())
        .limit(q.limit)
    )
    rows = db.session.execute(statement).all()
    tz = q.tz
    following = None
    if len(rows) == q.limit:
        following = encode_cursor(rows[-1].ts, rows[-1].id)
    return {
        "events": [_event(r, tz) for r in rows],
        "count": len(rows),
        "limit": q.limit,
        "next_cursor": following,
    }


# Sessions -------------------------------------------------------------------------

SESSION_COLUMNS = (
    "id",
    "started_at",
    "last_seen_at",
    "ended_at",
    "entry_path",
    "exit_path",
    "hostname",
    "pageviews",
    "events",
    "duration_s",
    "is_bounce",
    "engagement_score",
    "referrer_host",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "browser",
    "os",
    "device",
    "label",
    "agent_name",
    "agent_category",
)


def _session(row: Any, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "session_id": row.id,
        "started_at": iso(row.started_at),
        "local_start": _local(row.started_at, tz),
        "last_seen_at": iso(row.last_seen_at),
        "ended_at": iso(row.ended_at) if row.ended_at else None,
        "duration": row.duration_s,
        "entry_page": row.entry_path,
        "exit_page": row.exit_path,
        "hostname": row.hostname,
        "pageviews": row.pageviews,
        "events": row.events,
        "bounce": bool(row.is_bounce),
        "engagement_score": row.engagement_score,
        **_arrival_and_client(row),
    }


def sessions(q: Query, *, cursor: str | None = None) -> dict[str, Any]:
    """The newest `q.limit` visits started in the range, with their verdicts."""
    conditions = list(visits_where(q))
    chosen = selected(VISITS.c.label, q.labels)
    if chosen is not None:
        conditions.append(chosen)
    after = _after(VISITS.c.started_at, VISITS.c.id, cursor, numeric=False)
    if after is not None:
        conditions.append(after)
    statement = (
        select(*[VISITS.c[c] for c in SESSION_COLUMNS])
        .where(*conditions)
        .order_by(VISITS.c.started_at.desc(), VISITS.c.id.desc())
        .limit(q.limit)
    )
    rows = db.session.execute(statement).all()
    following = None
    if len(rows) == q.limit:
        following = encode_cursor(rows[-1].started_at, rows[-1].id)
    return {
        "sessions": [_session(r, q.tz) for r in rows],
        "count": len(rows),
        "limit": q.limit,
        "next_cursor": following,
    }


def duration_distribution(q: Query) -> dict[str, Any]:
    """Seed 002: visits started in the range, by duration bucket (all buckets, zeros too)."""
    seconds = VISITS.c.duration_s
    whens = [(seconds < upper, label) for label, _, upper in DURATION_BUCKETS if upper is not None]
    rows = {r["g"]: r for r in raw.visit_counts(q, case(*whens, else_=DURATION_BUCKETS[-1][0]))}
    total = sum(r["sessions"] for r in rows.values())
    duration = sum(r["duration"] for r in rows.values())
    buckets = []
    for label, low, high in DURATION_BUCKETS:
        row = rows.get(label)
        count = row["sessions"] if row else 0
        buckets.append(
            {
                "bucket": label,
                "min_seconds": low,
                "max_seconds": high,
                "sessions": count,
                "share": rate(count, total),
                **split(row, "sessions"),
            }
        )
    return {
        "sessions": total,
        "average_duration": round(duration / total) if total else 0,
        "distribution": buckets,
    }


def session_detail(site_id: int, session_id: str, tz: ZoneInfo, limit: int) -> dict[str, Any]:
    """One visit of the site and its events in order (session_end included); 404 otherwise."""
    visit = db.session.execute(
        select(*[VISITS.c[c] for c in SESSION_COLUMNS]).where(
            VISITS.c.id == session_id, VISITS.c.site_id == site_id
        )
    ).first()
    if visit is None:
        raise NotFound("Session not found.")
    statement = (
        select(*[EVENTS.c[c] for c in EVENT_COLUMNS])
        .where(EVENTS.c.site_id == site_id, EVENTS.c.session_id == session_id)
        .order_by(EVENTS.c.ts, EVENTS.c.id)
        .limit(limit)
    )
    rows = db.session.execute(statement).all()
    return {
        "session": _session(visit, tz),
        "events": [_event(r, tz) for r in rows],
        "count": len(rows),
    }


def site_of_session(session_id: str) -> int | None:
    """The site a visit belongs to (the caller still checks it may read that site)."""
    return db.session.scalar(select(VISITS.c.site_id).where(VISITS.c.id == session_id))


# Properties -----------------------------------------------------------------------


def value_text(value: Any) -> str | None:
    """A property value as a filter takes it (`prop.<key>=<text>`): strings as they are."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text[:MAX_VALUE_TEXT]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def _property_rows(q: Query) -> tuple[list[Any], bool]:
    """(name, props, ts) of the newest selected hits, and whether there were more."""
    conditions = list(events_where(q))
    chosen = selected(EVENTS.c.label, q.labels)
    if chosen is not None:
        conditions.append(chosen)
    statement = (
        select(EVENTS.c.name, EVENTS.c.props, EVENTS.c.ts)
        .where(*conditions)
        .order_by(EVENTS.c.ts.desc(), EVENTS.c.id.desc())
        .limit(PROPERTY_SAMPLE + 1)
    )
    rows = db.session.execute(statement).all()
    return rows[:PROPERTY_SAMPLE], len(rows) > PROPERTY_SAMPLE


def properties(q: Query) -> dict[str, Any]:
    """Seed 002: event names with counts, and property keys with their top values."""
    names = raw.event_counts(q, EVENTS.c.name, dimension="event")
    events_out = [
        {
            "event": r["g"],
            "count": r["pageviews"] + r["events"],
            "visitors": r["visitors"],
        }
        for r in names
        if r["visitors"]
    ]
    events_out.sort(key=lambda e: (-e["count"], e["event"]))
    rows, sampled = _property_rows(q)
    counts: Counter[str] = Counter()
    values: dict[str, Counter[str | None]] = defaultdict(Counter)
    seen_in: dict[str, set[str]] = defaultdict(set)
    for name, props, _ in rows:
        for key, value in (props or {}).items():
            counts[key] += 1
            values[key][value_text(value)] += 1
            seen_in[key].add(name)
    keys = []
    for key in sorted(counts, key=lambda k: (-counts[k], k)):
        top = sorted(values[key].items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
        keys.append(
            {
                "key": key,
                "count": counts[key],
                "events": sorted(seen_in[key]),
                "top_values": [{"value": v, "count": c} for v, c in top[:TOP_VALUES]],
            }
        )
    return {"events": events_out, "properties": keys, "sampled": sampled}


def properties_received(q: Query) -> dict[str, Any]:
    """Seed 002: for each event name, the property keys received, how often, of which types."""
    rows, sampled = _property_rows(q)
    totals: Counter[str] = Counter()
    per_key: dict[str, Counter[str]] = defaultdict(Counter)
    kinds: dict[tuple[str, str], set[str]] = defaultdict(set)
    last: dict[tuple[str, str], datetime] = {}
    for name, props, ts in rows:
        totals[name] += 1
        for key, value in (props or {}).items():
            per_key[name][key] += 1
            kinds[(name, key)].add(_kind(value))
            if (name, key) not in last or ts > last[(name, key)]:
                last[(name, key)] = ts
    result = []
    for name in sorted(totals, key=lambda n: (-totals[n], n)):
        keys = per_key[name]
        result.append(
            {
                "event": name,
                "count": totals[name],
                "properties": [
                    {
                        "key": key,
                        "count": keys[key],
                        "types": sorted(kinds[(name, key)]),
                        "last_seen": iso(last[(name, key)]),
                    }
                    for key in sorted(keys, key=lambda k: (-keys[k], k))
                ],
            }
        )
    return {"events": result, "sampled": sampled}
