"""Traffic with user ids over nine weeks, and funnels and retention computed again in Python.

The generator writes events and visits as ingestion does (daily visitor ids that
change at UTC midnight, even within a visit; session ids; a `user_id` on most events
of identified people, none or an empty string on the others) with sessions around
local midnights and the DST changes, and some hits sharing a timestamp with the one
before. The reference functions read those rows as dicts and follow the documented
rules by brute force (every start of a funnel tried in turn; calendar dates for
cohorts), without SQL and without the report's running-maximum trick.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from pulse.analytics.funnel import FunnelSpec, Step
from pulse.analytics.query import LABELS, Query
from pulse.extensions import db
from pulse.models import Event, Visit
from tests.analytics_reference import prop_text, ref_hits

PATHS = ["/", "/pricing", "/blog/a", "/blog/b", "/Blog/c", "/blog", "/checkout", "/checkout/done"]
NAMES = ["signup", "purchase", "click"]
SOURCES = [
    (None, "direct", None),
    ("Google", "organic-search", "google.com"),
    ("ChatGPT", "ai-assistant", "chatgpt.com"),
]
START = datetime(2024, 9, 2, tzinfo=UTC)
END = datetime(2024, 11, 6, 12, tzinfo=UTC)
NOW = END
DST = [datetime(2024, 10, 27, 1, tzinfo=UTC), datetime(2024, 11, 3, 6, tzinfo=UTC)]


def _visitor_id(site_id: int, person: int, moment: datetime) -> int:
    digest = hashlib.sha256(f"{site_id}:{person}:{moment.date()}".encode()).digest()
    return int.from_bytes(digest[:7], "big")


def _start(rng: random.Random, tz: ZoneInfo, i: int) -> datetime:
    span = (END - START).total_seconds() - 4 * 3600
    if i % 5 == 0:
        day = START.astimezone(tz).date() + timedelta(days=rng.randrange(1, 64))
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        moment = midnight + timedelta(seconds=rng.randint(-900, 900))
    elif i % 7 == 0:
        moment = rng.choice(DST) + timedelta(seconds=rng.randint(-7200, 3600))
    else:
        moment = START + timedelta(seconds=rng.uniform(0, span))
    return moment.replace(microsecond=rng.choice([0, 400_000, 999_999]))


def _hit(rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    if rng.random() < 0.6:
        return "pageview", rng.choice(PATHS), {}
    props: dict[str, Any] = {}
    if rng.random() < 0.7:
        props = {"plan": rng.choice(["free", "pro"])}
        if rng.random() < 0.3:
            props["seats"] = rng.randint(1, 3)
    return rng.choice(NAMES), rng.choice(PATHS), props


def generate(
    site_id: int, timezone: str, seed: int, sessions: int = 220, people: int = 40
) -> dict[str, list]:
    """Insert nine weeks of sessions for a site; return the rows as dicts."""
    rng = random.Random(seed)
    tz = ZoneInfo(timezone)
    identified = {p: rng.random() < 0.7 for p in range(people)}
    events: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    for n in range(sessions):
        person = rng.randrange(people)
        label = rng.choices(LABELS, weights=[75, 15, 10])[0]
        source, channel, referrer = rng.choice(SOURCES)
        place = {
            "country": rng.choice(["US", "DE", None]),
            "browser": rng.choice(["Chrome", "Firefox"]),
            "os": "Linux",
            "device": rng.choice(["desktop", "mobile"]),
        }
        session_id = f"f{site_id}-{n}"
        started = ts = _start(rng, tz, n)
        hits = []
        for h in range(rng.randint(1, 7)):
            if h:
                gap = rng.choice([0, 0, 1, 30, 300, 1800, 5400])
                ts += timedelta(seconds=gap, microseconds=rng.choice([0, 0, 250_000]))
            name, path, props = _hit(rng)
            if identified[person]:
                user = rng.choices([f"user-{person}", None, ""], weights=[85, 12, 3])[0]
            else:
                user = None
            hits.append(
                {
                    "site_id": site_id,
                    "event_uid": f"f{site_id}-{n}-{h}",
                    "ts": ts,
                    "name": name,
                    "session_id": session_id,
                    "visitor_id": _visitor_id(site_id, person, ts),
                    "user_id": user,
                    "hostname": "example.com",
                    "pathname": path,
                    "referrer_host": referrer if h == 0 else None,
                    "source": source if h == 0 else None,
                    "channel": channel if h == 0 else "internal",
                    **place,
                    "label": label if rng.random() < 0.9 else rng.choice(LABELS),
                    "props": props,
                }
            )
        views = [e for e in hits if e["name"] == "pageview"] or hits
        last = hits[-1]["ts"]
        visits.append(
            {
                "id": session_id,
                "site_id": site_id,
                "visitor_id": hits[0]["visitor_id"],
                "started_at": started,
                "last_seen_at": last,
                "entry_path": views[0]["pathname"],
                "exit_path": views[-1]["pathname"],
                "hostname": "example.com",
                "pageviews": sum(e["name"] == "pageview" for e in hits),
                "events": sum(e["name"] != "pageview" for e in hits),
                "duration_s": int((last - started).total_seconds()),
                "is_bounce": len(hits) == 1,
                "referrer_host": referrer,
                "source": source,
                "channel": channel,
                **place,
                "label": label,
            }
        )
        events.extend(hits)
    db.session.execute(insert(Visit), visits)
    db.session.execute(insert(Event), events)
    db.session.commit()
    return {"events": events, "visits": visits}


# Funnels -------------------------------------------------------------------------------


def _path_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def matches(step: Step, e: dict[str, Any]) -> bool:
    """Does the event satisfy the step (path or name, and every property)?"""
    if step.kind == "page":
        if e["name"] != "pageview":
            return False
        if "*" in step.value:
            if not _path_regex(step.value).fullmatch(e["pathname"]):
                return False
        elif e["pathname"] != step.value:
            return False
    elif e["name"] != step.value:
        return False
    return all(prop_text(e["props"], key) == value for key, value in step.props)


def _unit(e: dict[str, Any], unit: str) -> Any:
    if unit == "session":
        return e["session_id"] or None
    if unit == "user":
        return e["user_id"] or None
    return e["visitor_id"]


def furthest_step(spec: FunnelSpec, events: list[dict[str, Any]]) -> int:
    """Brute force: from every step-1 event, take the earliest next step each time."""
    steps = spec.steps
    window = timedelta(hours=spec.window_hours)
    ordered = sorted(events, key=lambda e: e["ts"])
    best = 0
    for first in ordered:
        if not matches(steps[0], first):
            continue
        level, previous = 1, first["ts"]
        for step in steps[1:]:
            nxt = next(
                (
                    e
                    for e in ordered
                    if e["ts"] > previous and matches(step, e) and e["ts"] - first["ts"] <= window
                ),
                None,
            )
            if nxt is None:
                break
            level, previous = level + 1, nxt["ts"]
        best = max(best, level)
    return best


def _attributed(spec: FunnelSpec, events: list[dict[str, Any]], visits: dict[str, Any]) -> Any:
    firsts = [e for e in events if matches(spec.steps[0], e)]
    earliest = min(e["ts"] for e in firsts)
    dim = spec.breakdown
    values = []
    for e in firsts:
        if e["ts"] != earliest:
            continue
        if dim.session_scoped:
            visit = visits.get(e["session_id"])
            values.append(visit[dim.visit_column] if visit else None)
        elif dim.prop_key:
            values.append(prop_text(e["props"], dim.prop_key))
        else:
            values.append(e[dim.event_column])
    concrete = [v for v in values if v is not None]
    return min(concrete) if concrete else None


def ref_levels(q: Query, spec: FunnelSpec, data: dict[str, list]) -> dict[Any, dict[int, int]]:
    """{breakdown value or None: {furthest step: units}}, units past step 1 only."""
    visits = {v["id"]: v for v in data["visits"]}
    by_unit: dict[Any, list] = defaultdict(list)
    for e in ref_hits(q, data):
        if q.labels is not None and e["label"] not in q.labels:
            continue
        key = _unit(e, spec.unit)
        if key is not None and any(matches(s, e) for s in spec.steps):
            by_unit[key].append(e)
    found: dict[Any, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for events in by_unit.values():
        level = furthest_step(spec, events)
        if level:
            value = _attributed(spec, events, visits) if spec.breakdown else None
            found[value][level] += 1
    return {k: dict(v) for k, v in found.items()}


def ref_funnel(q: Query, spec: FunnelSpec, data: dict[str, list]) -> dict[str, Any]:
    """The funnel report's numbers: counts, rates (0-1, 4 decimals), breakdown rows."""
    found = ref_levels(q, spec, data)

    def summary(levels: dict[int, int]) -> dict[str, Any]:
        counts = [sum(n for lvl, n in levels.items() if lvl >= k) for k in range(1, 11)]
        counts = counts[: len(spec.steps)]
        steps = []
        for i, count in enumerate(counts):
            before = counts[i - 1] if i else count
            steps.append(
                {
                    "count": count,
                    "conversion_rate": round(count / before, 4) if before else 0.0,
                    "conversion_rate_from_start": round(count / counts[0], 4) if counts[0] else 0.0,
                    "drop_off": before - count,
                }
            )
        overall = round(counts[-1] / counts[0], 4) if counts[0] else 0.0
        return {"entered": counts[0], "converted": counts[-1], "overall": overall, "steps": steps}

    total: dict[int, int] = defaultdict(int)
    for levels in found.values():
        for lvl, n in levels.items():
            total[lvl] += n
    result = summary(total)
    if spec.breakdown is not None:
        ranked = sorted(
            found.items(),
            key=lambda kv: (-sum(kv[1].values()), kv[0] is None, kv[0] or ""),
        )[: q.limit]
        result["rows"] = [{"value": v, **summary(levels)} for v, levels in ranked]
    return result


def shape(report: dict[str, Any]) -> dict[str, Any]:
    """The report's funnel numbers in `ref_funnel`'s shape."""

    def summary(part: dict[str, Any]) -> dict[str, Any]:
        keys = ("count", "conversion_rate", "conversion_rate_from_start", "drop_off")
        return {
            "entered": part["entered"],
            "converted": part["converted"],
            "overall": part["overall_conversion_rate"],
            "steps": [{k: s[k] for k in keys} for s in part["steps"]],
        }

    result = summary(report)
    if report.get("breakdown"):
        result["rows"] = [{"value": r["value"], **summary(r)} for r in report["breakdown"]["rows"]]
    return result


# Retention -----------------------------------------------------------------------------


def _period_start(day: date, grain: str) -> date:
    return day - timedelta(days=day.weekday()) if grain == "week" else day


def ref_retention(q: Query, grain: str, data: dict[str, list]) -> dict[str, Any]:
    """Cohorts by the local day or Monday of each user's first event in the range."""
    tz = q.tz
    step = 7 if grain == "week" else 1
    periods: dict[str, set[date]] = defaultdict(set)
    unidentified = 0
    for e in ref_hits(q, data):
        if q.labels is not None and e["label"] not in q.labels:
            continue
        if not e["user_id"]:
            unidentified += 1
            continue
        periods[e["user_id"]].add(_period_start(e["ts"].astimezone(tz).date(), grain))
    first_day = _period_start(q.start.astimezone(tz).date(), grain)
    last_day = _period_start((q.end - timedelta(microseconds=1)).astimezone(tz).date(), grain)
    starts = []
    day = first_day
    while day <= last_day:
        starts.append(day)
        day += timedelta(days=step)
    cohorts = []
    for index, start in enumerate(starts):
        members = [u for u, seen in periods.items() if min(seen) == start]
        returning = []
        for later in starts[index:]:
            returning.append(sum(1 for u in members if later in periods[u]))
        size = len(members)
        cohorts.append(
            {
                "cohort": start.isoformat(),
                "size": size,
                "returning": returning,
                "rates": [round(n / size, 4) if size else 0.0 for n in returning],
            }
        )
    average = [1.0]
    for k in range(1, len(starts)):
        eligible = [c for c in cohorts if len(c["returning"]) > k]
        users = sum(c["size"] for c in eligible)
        back = sum(c["returning"][k] for c in eligible)
        average.append(round(back / users, 4) if users else 0.0)
    return {
        "users": len(periods),
        "unidentified_events": unidentified,
        "cohorts": cohorts,
        "average_rates": average,
    }
