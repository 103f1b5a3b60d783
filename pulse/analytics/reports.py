"""Reports: functions of a Query that return plain dicts, ready to serialise.

Counting rules, the same in every report:
- visitors: distinct daily visitor ids among hits (a person seen on two days
  counts twice: the ids rotate daily, by design);
- pageviews / events: hits named `pageview` / any other name (`session_end` is not a hit);
- sessions, bounce rate, visit duration: visits that started in the range;
- a hit counts under its own label, a visit under its verdict (re-scored at session end);
- humans / agents / bots: the same counts per label, whatever the classification filter.
Rates are percentages with one decimal; durations whole seconds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case

from pulse.analytics import raw
from pulse.analytics.breakdowns import breakdown
from pulse.analytics.buckets import bucket_starts
from pulse.analytics.dimensions import EVENTS, VISITS
from pulse.analytics.formatting import change, rate, split, with_share
from pulse.analytics.query import LABELS, Query, realtime_query
from pulse.analytics.sql import bucket_key
from pulse.ingest.enrich import LABELS as ENGAGEMENT_LABELS

OVERVIEW_METRICS = (
    "visitors",
    "pageviews",
    "events",
    "total_events",
    "sessions",
    "bounce_rate",
    "visit_duration",
    "views_per_visit",
    "humans",
    "agents",
    "bots",
    "detection_rate",
    "unique_users",
    "total_sessions",
)


def _overview_values(q: Query) -> dict[str, Any]:
    hits = raw.event_counts(q)[0]
    visits = raw.visit_counts(q, visitors=False)[0]  # visitors come from the hits
    sessions = visits["sessions"]
    labels = split(hits)
    return {
        "visitors": hits["visitors"],
        "pageviews": hits["pageviews"],
        "events": hits["events"],
        "total_events": hits["pageviews"] + hits["events"],
        "sessions": sessions,
        "bounce_rate": rate(visits["bounces"], sessions),
        "visit_duration": round(visits["duration"] / sessions) if sessions else 0,
        "views_per_visit": round(visits["pageviews"] / sessions, 2) if sessions else 0.0,
        **labels,
        "detection_rate": rate(labels["agents"] + labels["bots"], sum(labels.values())),
        "unique_users": hits["visitors"],
        "total_sessions": sessions,
        "by_classification": {
            label: {
                "visitors": hits[f"{label}_visitors"],
                "pageviews": hits[f"{label}_pageviews"],
                "sessions": visits[f"{label}_sessions"],
            }
            for label in LABELS
        },
    }


def overview(q: Query) -> dict[str, Any]:
    """Headline numbers; with `q.compare`, a `metrics` map against the previous period.

    `unique_users` and `total_sessions` repeat visitors and sessions under seed 002's names.
    """
    current = _overview_values(q)
    result = dict(current)
    if q.compare:
        before = q.previous()
        previous = _overview_values(before)
        result["metrics"] = {k: change(current[k], previous[k]) for k in OVERVIEW_METRICS}
        result["previous_period"] = {
            "start": before.describe()["start"],
            "end": before.describe()["end"],
        }
    return result


def timeseries(q: Query, interval: str | None = None) -> dict[str, Any]:
    """Counts per hour, day, week or month of the site's calendar, empty buckets as zeros."""
    interval = interval or q.bucket_interval
    buckets = bucket_starts(q.tz, q.start, q.end, interval)
    hit_key = bucket_key(EVENTS.c.ts, q, interval)
    visit_key = bucket_key(VISITS.c.started_at, q, interval)
    hits = {r["g"]: r for r in raw.event_counts(q, hit_key, interval=interval)}
    visits = {r["g"]: r for r in raw.visit_counts(q, visit_key, interval=interval)}
    points = []
    for bucket in buckets:
        h = hits.get(bucket.key)
        v = visits.get(bucket.key)
        sessions = v["sessions"] if v else 0
        points.append(
            {
                "date": bucket.label,
                "visitors": h["visitors"] if h else 0,
                "pageviews": h["pageviews"] if h else 0,
                "events": h["events"] if h else 0,
                "sessions": sessions,
                "bounce_rate": rate(v["bounces"], sessions) if v else 0.0,
                "visit_duration": round(v["duration"] / sessions) if sessions else 0,
                **split(h),
            }
        )
    return {"interval": interval, "points": points}


def daily_sessions(q: Query) -> dict[str, Any]:
    """Seed 001: sessions (and visitors, pageviews) per day of the site's calendar."""
    series = timeseries(q, "day")["points"]
    return {
        "days": [
            {
                "date": p["date"],
                "sessions": p["sessions"],
                "visitors": p["visitors"],
                "pageviews": p["pageviews"],
                "bounce_rate": p["bounce_rate"],
                "humans": p["humans"],
                "agents": p["agents"],
                "bots": p["bots"],
            }
            for p in series
        ]
    }


def engagement_buckets() -> list[tuple[str, float | None, float | None]]:
    """(name, lowest score, score it stays below) of the engagement labels, lowest first."""
    floors = sorted(ENGAGEMENT_LABELS)
    named = [("bounce", 0.0, floors[0][0])]
    for i, (floor, label) in enumerate(floors):
        upper = floors[i + 1][0] if i + 1 < len(floors) else None
        named.append((label, floor, upper))
    return named


def engagement(q: Query) -> dict[str, Any]:
    """Seed 001: sessions per engagement bucket (score 0-100, set when a session ends)."""
    named = engagement_buckets()
    score = VISITS.c.engagement_score
    whens = [(score.is_(None), "unscored")]
    whens += [(score < upper, name) for name, _, upper in named if upper is not None]
    rows = {r["g"]: r for r in raw.visit_counts(q, case(*whens, else_=named[-1][0]))}
    total = sum(r["sessions"] for r in rows.values())
    scored = sum(r["scored"] for r in rows.values())
    buckets = []
    for name, low, high in [*named, ("unscored", None, None)]:
        row = rows.get(name)
        sessions = row["sessions"] if row else 0
        buckets.append(
            {
                "bucket": name,
                "min": low,
                "max": high,
                "sessions": sessions,
                "share": rate(sessions, total),
                **split(row, "sessions"),
            }
        )
    score_sum = sum(r["score"] for r in rows.values())
    return {
        "sessions": total,
        "scored_sessions": scored,
        # Scores have one decimal: round the sum first, so summation order cannot matter.
        "average_score": round(round(score_sum, 1) / scored, 1) if scored else None,
        "buckets": buckets,
    }


def realtime(q: Query) -> dict[str, Any]:
    """Who is here now: the last five minutes of hits, and the pages they are on."""
    window = realtime_query(q)
    hits = raw.event_counts(window, sessions=True)[0]
    top = breakdown(window, "page")
    return {
        "window_seconds": 300,
        "visitors": hits["visitors"],
        "active_sessions": hits["sessions"],
        "pageviews": hits["pageviews"],
        "events": hits["events"],
        **with_share(split(hits)),
        "pages": top["rows"],
    }


def stats(q: Query) -> dict[str, Any]:
    """The overview, plus the time series when an interval (seed 002 `groupBy`) is asked."""
    result = overview(q)
    if q.interval is not None:
        result["timeseries"] = timeseries(q)["points"]
    return result


VISITOR_DIMENSIONS = ("country", "device", "browser", "os")


def visitors(q: Query) -> dict[str, Any]:
    """Seed 000's visitor analytics: how many, of which kind, from where, on what."""
    values = _overview_values(q)
    series = timeseries(q)
    return {
        "visitors": values["visitors"],
        "by_classification": {k: v["visitors"] for k, v in values["by_classification"].items()},
        "humans": values["humans"],
        "agents": values["agents"],
        "bots": values["bots"],
        "interval": series["interval"],
        "timeseries": [
            {k: p[k] for k in ("date", "visitors", "humans", "agents", "bots")}
            for p in series["points"]
        ],
        **{
            name: [
                {"value": r["value"], "visitors": r["visitors"]} for r in breakdown(q, name)["rows"]
            ]
            for name in VISITOR_DIMENSIONS
        },
    }
