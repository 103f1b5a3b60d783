"""Synthetic traffic for the analytics tests, and every report computed again in Python.

The generator writes events and visits the way ingestion does (a visit's hits are
never earlier than its start; a visitor id changes at UTC midnight, even within a
visit; a hit's label may differ from its visit's re-scored verdict). The reference
functions read those rows as plain dicts and apply the documented rules one by one,
with no SQL, so a report and its reference agree only if the SQL means what the
docstrings say.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from pulse.analytics.query import LABELS, Query
from pulse.extensions import db
from pulse.models import Event, Visit

PATHS = ["/", "/pricing", "/docs", "/docs/api", "/Blog/b", "/blog/a", "/über"]
SOURCES = [
    (None, "direct", None),
    ("Google", "organic-search", "google.com"),
    ("ChatGPT", "ai-assistant", "chatgpt.com"),
    ("Hacker News", "organic-social", "news.ycombinator.com"),
    ("Newsletter", "email", None),
]
AGENTS = {"agent": ["ChatGPT-User", "ClaudeBot", "PerplexityBot"], "bot": ["Googlebot", "curl"]}
START = datetime(2024, 10, 29, tzinfo=UTC)
END = datetime(2024, 11, 7, tzinfo=UTC)
DST_CHANGE = datetime(2024, 11, 3, 6, tzinfo=UTC)  # America/New_York falls back


def _agent_of(label: str) -> str | None:
    return AGENTS[label][0] if label in AGENTS else None


def _visitor_id(site_id: int, person: int, moment: datetime) -> int:
    digest = hashlib.sha256(f"{site_id}:{person}:{moment.date()}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


def _steady_client(person: int) -> tuple[dict[str, Any], str, str | None]:
    """The client, label and agent of a person in a steady world: the same every day."""
    fixed = random.Random(person)
    place = {
        "country": fixed.choice(["US", "DE", "NP", None]),
        "browser": fixed.choice(["Chrome", "Firefox", "Safari", None]),
        "os": fixed.choice(["Windows", "macOS", "Android", "iOS"]),
        "device": fixed.choice(["desktop", "mobile", "tablet"]),
    }
    label = fixed.choices(LABELS, weights=[70, 15, 15])[0]
    return place, label, fixed.choice(AGENTS[label]) if label != "human" else None


def _start_times(rng: random.Random, tz: ZoneInfo, count: int) -> list[datetime]:
    """Mostly uniform, some just around local midnights and the DST change."""
    times = []
    span = (END - START).total_seconds() - 6 * 3600
    for i in range(count):
        if i % 5 == 0:
            day = START.astimezone(tz).date() + timedelta(days=rng.randrange(1, 8))
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
            moment = midnight + timedelta(seconds=rng.randint(-600, 600))
        elif i % 7 == 0:
            moment = DST_CHANGE + timedelta(seconds=rng.randint(-7200, 3600))
        else:
            moment = START + timedelta(seconds=rng.uniform(0, span))
        times.append(moment.replace(microsecond=rng.choice([0, 250_000, 999_999])))
    return times


def generate(
    site_id: int, timezone: str, seed: int, visits: int = 160, steady: bool = False
) -> dict[str, list]:
    """Insert a week and a bit of traffic for a site; return the rows as dicts.

    With `steady`, each person keeps one country, browser, OS, device and label, as a
    real visitor id (a hash of IP address and user agent) does; by default they change
    from visit to visit, and the label from hit to hit.
    """
    rng = random.Random(seed)
    tz = ZoneInfo(timezone)
    event_rows: list[dict[str, Any]] = []
    visit_rows: list[dict[str, Any]] = []
    for n, started in enumerate(_start_times(rng, tz, visits)):
        person = rng.randrange(45)
        label = rng.choices(LABELS, weights=[70, 15, 15])[0]
        source, channel, referrer = rng.choice(SOURCES)
        utm = {
            "utm_source": rng.choice([None, None, "newsletter", "twitter"]),
            "utm_medium": rng.choice([None, "email", "social"]),
            "utm_campaign": rng.choice([None, "launch", "fall"]),
        }
        place = {
            "country": rng.choice(["US", "DE", "NP", None]),
            "browser": rng.choice(["Chrome", "Firefox", "Safari", None]),
            "os": rng.choice(["Windows", "macOS", "Android", "iOS"]),
            "device": rng.choice(["desktop", "mobile", "tablet"]),
        }
        agent = rng.choice(AGENTS[label]) if label != "human" else None
        if steady:
            place, label, agent = _steady_client(person)
        hostname = rng.choice(["example.com", "www.example.com"])
        session_id = f"s{site_id}-{n}"
        ts = started
        hits: list[dict[str, Any]] = []
        for h in range(rng.randint(1, 6)):
            if h:
                ts += timedelta(seconds=rng.randint(5, 1500))
            is_view = h == 0 or rng.random() < 0.65
            name = "pageview" if is_view else rng.choice(["signup", "click", "download"])
            props: dict[str, Any] = {}
            if not is_view and rng.random() < 0.8:
                props = {"plan": rng.choice(["free", "pro"]), "count": rng.randint(1, 3)}
                if rng.random() < 0.5:
                    props["beta"] = rng.random() < 0.5
            elif is_view and rng.random() < 0.3:
                props = {"lang": rng.choice(["en", "de"])}
            hit_label = label if rng.random() < 0.85 else rng.choice(LABELS)
            if steady:
                hit_label = label
            hits.append(
                {
                    "site_id": site_id,
                    "event_uid": f"{site_id}-{n}-{h}",
                    "ts": ts,
                    "name": name,
                    "session_id": session_id,
                    "visitor_id": _visitor_id(site_id, person, ts),
                    "hostname": hostname,
                    "pathname": rng.choice(PATHS),
                    "referrer_host": referrer if h == 0 else None,
                    "source": source if h == 0 else None,
                    "channel": channel if h == 0 else "internal",
                    **(utm if h == 0 else {k: None for k in utm}),
                    "utm_term": rng.choice([None, "analytics"]) if h == 0 else None,
                    "utm_content": rng.choice([None, "banner", "link"]) if h == 0 else None,
                    **place,
                    "label": hit_label,
                    "agent_name": agent if hit_label == label else _agent_of(hit_label),
                    "agent_category": None,
                    "props": props,
                }
            )
        if rng.random() < 0.3:
            ts += timedelta(seconds=rng.randint(1, 60))
            hits.append(
                {
                    **hits[-1],
                    "event_uid": f"{site_id}-{n}-end",
                    "ts": ts,
                    "name": "session_end",
                    "visitor_id": _visitor_id(site_id, person, ts),
                    "props": {},
                }
            )
        views = [h for h in hits if h["name"] == "pageview"]
        custom = [h for h in hits if h["name"] not in ("pageview", "session_end")]
        last = max(h["ts"] for h in hits if h["name"] != "session_end")
        visit_rows.append(
            {
                "id": session_id,
                "site_id": site_id,
                "visitor_id": hits[0]["visitor_id"],
                "started_at": started,
                "last_seen_at": last,
                "entry_path": views[0]["pathname"],
                "exit_path": views[-1]["pathname"],
                "hostname": hostname,
                "pageviews": len(views),
                "events": len(custom),
                "duration_s": int((last - started).total_seconds()),
                "is_bounce": len(views) <= 1 and not custom,
                "engagement_score": rng.choice(
                    [None, 10.0, 40.0, 70.0, 9.9, round(rng.uniform(0, 100), 1)]
                ),
                "referrer_host": referrer,
                "source": source,
                "channel": channel,
                **utm,
                **place,
                "label": label,
                "agent_name": agent,
            }
        )
        event_rows.extend(hits)
    db.session.execute(insert(Visit), visit_rows)
    db.session.execute(insert(Event), event_rows)
    db.session.commit()
    return {"events": event_rows, "visits": visit_rows}


ZONES = {"new_york": "America/New_York", "kathmandu": "Asia/Kathmandu"}


class World(dict):
    """A fixture's value; a short repr keeps hypothesis' failure reports readable."""

    def __repr__(self) -> str:
        return "<world>"


def two_zone_world(slug: str, seed: int) -> World:
    """A team with two sites, in New York (a DST change) and Kathmandu (+5:45), each
    with its own generated traffic: tenant, sites and data by zone name."""
    from tests.factories import make_site, make_tenant

    tenant = make_tenant(slug)
    other = make_site(tenant.team, tenant.owner, "kathmandu.example")
    tenant.site.timezone = ZONES["new_york"]
    other.timezone = ZONES["kathmandu"]
    db.session.commit()
    sites = {"new_york": tenant.site, "kathmandu": other}
    data = {
        name: generate(site.id, site.timezone, seed=seed + i)
        for i, (name, site) in enumerate(sites.items())
    }
    return World(tenant=tenant, sites=sites, data=data)


# The reference -------------------------------------------------------------------


def prop_text(props: dict[str, Any], key: str) -> str | None:
    value = props.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _event_value(e: dict[str, Any], dim: Any) -> Any:
    return prop_text(e["props"], dim.prop_key) if dim.prop_key else e[dim.event_column]


def _chosen(q: Query, label: str) -> bool:
    return q.labels is None or label in q.labels


def ref_hits(q: Query, data: dict[str, list]) -> list[dict[str, Any]]:
    visits = {v["id"]: v for v in data["visits"]}
    found = []
    for e in data["events"]:
        if e["site_id"] != q.site_id or e["name"] == "session_end":
            continue
        if not q.start <= e["ts"] < q.end:
            continue
        ok = True
        for f in q.filters:
            d = f.dimension
            if d.session_scoped:
                visit = visits.get(e["session_id"])
                ok = visit is not None and visit[d.visit_column] in f.values
            else:
                ok = _event_value(e, d) in f.values
            if not ok:
                break
        if ok:
            found.append(e)
    return found


def ref_visits(q: Query, data: dict[str, list]) -> list[dict[str, Any]]:
    hits_of: dict[str, list] = defaultdict(list)
    for e in data["events"]:
        if e["name"] != "session_end":
            hits_of[e["session_id"]].append(e)
    on_hits = [f for f in q.filters if f.dimension.visit_column is None]
    found = []
    for v in data["visits"]:
        if v["site_id"] != q.site_id or not q.start <= v["started_at"] < q.end:
            continue
        if any(
            v[f.dimension.visit_column] not in f.values
            for f in q.filters
            if f.dimension.visit_column
        ):
            continue
        if on_hits and not any(
            all(_event_value(e, f.dimension) in f.values for f in on_hits) for e in hits_of[v["id"]]
        ):
            continue
        found.append(v)
    return found


def _pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _hit_counts(q: Query, hits: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [e for e in hits if _chosen(q, e["label"])]
    views = [e for e in mine if e["name"] == "pageview"]
    counts = {
        "visitors": len({e["visitor_id"] for e in mine}),
        "pageviews": len(views),
        "events": len(mine) - len(views),
    }
    for label in LABELS:
        counts[label + "s"] = len({e["visitor_id"] for e in hits if e["label"] == label})
    return counts


def _visit_counts(q: Query, visits: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [v for v in visits if _chosen(q, v["label"])]
    sessions = len(mine)
    counts = {
        "visitors": len({v["visitor_id"] for v in mine}),
        "sessions": sessions,
        "pageviews": sum(v["pageviews"] for v in mine),
        "bounce_rate": _pct(sum(1 for v in mine if v["is_bounce"]), sessions),
        "visit_duration": round(sum(v["duration_s"] for v in mine) / sessions) if sessions else 0,
    }
    for label in LABELS:
        counts[label + "s"] = len({v["visitor_id"] for v in visits if v["label"] == label})
    return counts


def ref_overview(q: Query, data: dict[str, list]) -> dict[str, Any]:
    hits, visits = ref_hits(q, data), ref_visits(q, data)
    h = _hit_counts(q, hits)
    mine = [v for v in visits if _chosen(q, v["label"])]
    sessions = len(mine)
    total = h["humans"] + h["agents"] + h["bots"]
    return {
        "visitors": h["visitors"],
        "pageviews": h["pageviews"],
        "events": h["events"],
        "total_events": h["pageviews"] + h["events"],
        "sessions": sessions,
        "bounce_rate": _pct(sum(1 for v in mine if v["is_bounce"]), sessions),
        "visit_duration": round(sum(v["duration_s"] for v in mine) / sessions) if sessions else 0,
        "views_per_visit": round(sum(v["pageviews"] for v in mine) / sessions, 2)
        if sessions
        else 0.0,
        "humans": h["humans"],
        "agents": h["agents"],
        "bots": h["bots"],
        "detection_rate": _pct(h["agents"] + h["bots"], total),
        "by_classification": {
            label: {
                "visitors": len({e["visitor_id"] for e in hits if e["label"] == label}),
                "pageviews": sum(
                    1 for e in hits if e["label"] == label and e["name"] == "pageview"
                ),
                "sessions": sum(1 for v in visits if v["label"] == label),
            }
            for label in LABELS
        },
        "unique_users": h["visitors"],
        "total_sessions": sessions,
    }


def local_bucket(moment: datetime, tz: ZoneInfo, interval: str) -> str:
    local = moment.astimezone(tz)
    if interval == "hour":
        return local.replace(minute=0, second=0, microsecond=0).isoformat()
    if interval == "day":
        return local.date().isoformat()
    if interval == "week":
        return (local.date() - timedelta(days=local.weekday())).isoformat()
    return local.date().replace(day=1).isoformat()


def expected_buckets(q: Query, interval: str) -> list[str]:
    """Every bucket label of [start, end), found by walking the range minute by minute."""
    labels: list[str] = []
    step = timedelta(minutes=1) if interval == "hour" else timedelta(hours=1)
    moment = q.start
    while moment < q.end:
        label = local_bucket(moment, q.tz, interval)
        if not labels or labels[-1] != label:
            labels.append(label)
        moment += step
    last = (
        local_bucket(q.end - timedelta(microseconds=1), q.tz, interval) if q.end > q.start else None
    )
    if last and labels[-1] != last:
        labels.append(last)
    return labels


def ref_timeseries(q: Query, data: dict[str, list], interval: str) -> list[dict[str, Any]]:
    hits, visits = ref_hits(q, data), ref_visits(q, data)
    by_hit: dict[str, list] = defaultdict(list)
    by_visit: dict[str, list] = defaultdict(list)
    for e in hits:
        by_hit[local_bucket(e["ts"], q.tz, interval)].append(e)
    for v in visits:
        by_visit[local_bucket(v["started_at"], q.tz, interval)].append(v)
    points = []
    for label in expected_buckets(q, interval):
        h = _hit_counts(q, by_hit[label])
        v = _visit_counts(q, by_visit[label])
        points.append(
            {
                "date": label,
                "visitors": h["visitors"],
                "pageviews": h["pageviews"],
                "events": h["events"],
                "sessions": v["sessions"],
                "bounce_rate": v["bounce_rate"],
                "visit_duration": v["visit_duration"],
                "humans": h["humans"],
                "agents": h["agents"],
                "bots": h["bots"],
            }
        )
    return points


def _share(row: dict[str, Any]) -> float:
    return _pct(row["agents"], row["humans"] + row["agents"] + row["bots"])


def ref_breakdown(q: Query, data: dict[str, list], dim: Any, limit: int) -> list[dict[str, Any]]:
    rows = []
    if dim.session_scoped:
        groups: dict[Any, list] = defaultdict(list)
        for v in ref_visits(q, data):
            groups[v[dim.visit_column]].append(v)
        for value, visits in groups.items():
            row = _visit_counts(q, visits)
            if row["visitors"]:
                rows.append({"value": value, **row, "agent_share": _share(row)})
        second = "sessions"
    else:
        groups = defaultdict(list)
        for e in ref_hits(q, data):
            groups[_event_value(e, dim)].append(e)
        for value, hits in groups.items():
            row = _hit_counts(q, hits)
            if row["visitors"]:
                rows.append({"value": value, **row, "agent_share": _share(row)})
        second = "pageviews"
    rows.sort(key=lambda r: (-r["visitors"], -r[second], r["value"] is None, r["value"] or ""))
    for row in rows:
        if dim.prop_key is None:
            row[dim.name] = row["value"]
    return rows[:limit]


def ref_engagement(q: Query, data: dict[str, list]) -> dict[str, Any]:
    mine = [v for v in ref_visits(q, data) if _chosen(q, v["label"])]
    everyone = ref_visits(q, data)

    def bucket(score: float | None) -> str:
        if score is None:
            return "unscored"
        if score < 10:
            return "bounce"
        if score < 40:
            return "low"
        return "medium" if score < 70 else "high"

    scored = [v["engagement_score"] for v in mine if v["engagement_score"] is not None]
    return {
        "sessions": len(mine),
        "scored_sessions": len(scored),
        "average_score": round(round(sum(scored), 1) / len(scored), 1) if scored else None,
        "counts": {
            name: (
                sum(1 for v in mine if bucket(v["engagement_score"]) == name),
                {
                    label + "s": sum(
                        1
                        for v in everyone
                        if v["label"] == label and bucket(v["engagement_score"]) == name
                    )
                    for label in LABELS
                },
            )
            for name in ("bounce", "low", "medium", "high", "unscored")
        },
    }


def day_count(q: Query) -> int:
    first = q.start.astimezone(q.tz).date()
    last = (q.end - timedelta(microseconds=1)).astimezone(q.tz).date()
    return (last - first).days + 1 if q.end > q.start else 0


def today_in(tz: ZoneInfo, now: datetime) -> date:
    return now.astimezone(tz).date()
