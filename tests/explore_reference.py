"""The explorers computed again in plain Python over the generated rows (no SQL).

Uses the rows `analytics_reference.generate` returns and its `ref_hits` / `ref_visits`
(which apply the filters the documented way); each function here applies the
explorer's own rules one by one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from pulse.analytics.dimensions import dimension
from pulse.analytics.query import LABELS, Query
from tests import analytics_reference as ref

DURATIONS = [
    ("0-10s", 0, 10),
    ("10-30s", 10, 30),
    ("30-60s", 30, 60),
    ("1-3m", 60, 180),
    ("3-10m", 180, 600),
    ("10-30m", 600, 1800),
    ("30m+", 1800, 10**12),
]
DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def chosen(q: Query, label: str) -> bool:
    return q.labels is None or label in q.labels


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _order_of(data: dict[str, list]) -> dict[str, int]:
    """Insertion order of the events: the database ids follow it."""
    return {e["event_uid"]: i for i, e in enumerate(data["events"])}


def ref_events(q: Query, data: dict[str, list], session_id: str | None = None) -> list[dict]:
    """Every selected hit of the range, newest first (ties: the later inserted first)."""
    order = _order_of(data)
    hits = [e for e in ref.ref_hits(q, data) if chosen(q, e["label"])]
    if session_id is not None:
        hits = [e for e in hits if e["session_id"] == session_id]
    hits.sort(key=lambda e: (e["ts"], order[e["event_uid"]]), reverse=True)
    return hits


def ref_sessions(q: Query, data: dict[str, list]) -> list[dict]:
    visits = [v for v in ref.ref_visits(q, data) if chosen(q, v["label"])]
    visits.sort(key=lambda v: (v["started_at"], v["id"]), reverse=True)
    return visits


def ref_distribution(q: Query, data: dict[str, list]) -> dict[str, Any]:
    everyone = ref.ref_visits(q, data)
    mine = [v for v in everyone if chosen(q, v["label"])]
    counts = {}
    for name, low, high in DURATIONS:
        counts[name] = {
            "sessions": sum(1 for v in mine if low <= v["duration_s"] < high),
            **{
                label + "s": sum(
                    1 for v in everyone if v["label"] == label and low <= v["duration_s"] < high
                )
                for label in LABELS
            },
        }
    total = len(mine)
    return {
        "sessions": total,
        "average_duration": round(sum(v["duration_s"] for v in mine) / total) if total else 0,
        "counts": counts,
    }


def ref_session_events(data: dict[str, list], session_id: str) -> list[str]:
    """Event uids of one session in time order, session_end included."""
    order = _order_of(data)
    rows = [e for e in data["events"] if e["session_id"] == session_id]
    rows.sort(key=lambda e: (e["ts"], order[e["event_uid"]]))
    return [e["event_uid"] for e in rows]


def ref_properties(q: Query, data: dict[str, list]) -> dict[str, Any]:
    hits = [e for e in ref.ref_hits(q, data) if chosen(q, e["label"])]
    names: dict[str, list] = defaultdict(list)
    for e in hits:
        names[e["name"]].append(e)
    events = [
        {"event": n, "count": len(rows), "visitors": len({e["visitor_id"] for e in rows})}
        for n, rows in names.items()
    ]
    events.sort(key=lambda r: (-r["count"], r["event"]))
    keys: dict[str, Counter] = defaultdict(Counter)
    carriers: dict[str, set] = defaultdict(set)
    for e in hits:
        for key in e["props"]:
            keys[key][ref.prop_text(e["props"], key)] += 1
            carriers[key].add(e["name"])
    properties = {
        key: {
            "count": sum(values.values()),
            "events": sorted(carriers[key]),
            "values": dict(values),
        }
        for key, values in keys.items()
    }
    return {"events": events, "properties": properties}


def ref_received(q: Query, data: dict[str, list]) -> dict[str, dict[str, Any]]:
    hits = [e for e in ref.ref_hits(q, data) if chosen(q, e["label"])]
    out: dict[str, dict[str, Any]] = {}
    for e in hits:
        entry = out.setdefault(
            e["name"], {"count": 0, "keys": Counter(), "types": defaultdict(set)}
        )
        entry["count"] += 1
        for key, value in e["props"].items():
            entry["keys"][key] += 1
            kind = {bool: "boolean", int: "number", float: "number", str: "string"}
            entry["types"][key].add(kind[type(value)])
    return out


def ref_heatmap(q: Query, data: dict[str, list]) -> dict[tuple[int, int], dict[str, int]]:
    """(weekday, hour) on the site's clock -> visitors, pageviews, events and the label split."""
    cells: dict[tuple[int, int], list] = defaultdict(list)
    for e in ref.ref_hits(q, data):
        local = e["ts"].astimezone(q.tz)
        cells[(local.weekday(), local.hour)].append(e)
    out = {}
    for cell, hits in cells.items():
        mine = [e for e in hits if chosen(q, e["label"])]
        if not mine:
            continue
        out[cell] = {
            "visitors": len({e["visitor_id"] for e in mine}),
            "pageviews": sum(1 for e in mine if e["name"] == "pageview"),
            "events": sum(1 for e in mine if e["name"] != "pageview"),
            **{
                label + "s": len({e["visitor_id"] for e in hits if e["label"] == label})
                for label in LABELS
            },
        }
    return out


# POST /query ------------------------------------------------------------------------

TIMES = ("hour", "day", "week", "month")


def _hit_value(e: dict[str, Any], name: str, q: Query) -> Any:
    if name in TIMES:
        return ref.local_bucket(e["ts"], q.tz, name)
    d = dimension(name)
    return ref.prop_text(e["props"], d.prop_key) if d.prop_key else e[d.event_column]


def _visit_value(v: dict[str, Any], name: str, q: Query) -> Any:
    if name in TIMES:
        return ref.local_bucket(v["started_at"], q.tz, name)
    return v[dimension(name).visit_column]


def _pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def ref_query(
    q: Query,
    data: dict[str, list],
    metrics: list[str],
    group_by: list[str],
    order_by: str | None = None,
    descending: bool | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Rows of the flexible query, by the rules in custom_query's docstring."""
    by_visits = any(n not in TIMES and dimension(n).session_scoped for n in group_by)
    hit_groups: dict[tuple, list] = defaultdict(list)
    visit_groups: dict[tuple, list] = defaultdict(list)
    if not by_visits:
        for e in ref.ref_hits(q, data):
            hit_groups[tuple(_hit_value(e, n, q) for n in group_by)].append(e)
    needs_visits = by_visits or any(
        m in ("sessions", "total_sessions", "bounce_rate", "visit_duration", "views_per_visit")
        for m in metrics
    )
    if needs_visits:
        for v in ref.ref_visits(q, data):
            visit_groups[tuple(_visit_value(v, n, q) for n in group_by)].append(v)
    keys = list(dict.fromkeys([*hit_groups, *visit_groups])) or ([()] if not group_by else [])
    rows = []
    for key in keys:
        hits, visits = hit_groups.get(key, []), visit_groups.get(key, [])
        mine_h = [e for e in hits if chosen(q, e["label"])]
        mine_v = [v for v in visits if chosen(q, v["label"])]
        sessions = len(mine_v)
        if by_visits:
            visitors = len({v["visitor_id"] for v in mine_v})
            pageviews = sum(v["pageviews"] for v in mine_v)
            split = {
                label + "s": len({v["visitor_id"] for v in visits if v["label"] == label})
                for label in LABELS
            }
        else:
            visitors = len({e["visitor_id"] for e in mine_h})
            pageviews = sum(1 for e in mine_h if e["name"] == "pageview")
            split = {
                label + "s": len({e["visitor_id"] for e in hits if e["label"] == label})
                for label in LABELS
            }
        if group_by and not (visitors or sessions):
            continue
        events = len(mine_h) - sum(1 for e in mine_h if e["name"] == "pageview")
        values = {
            "visitors": visitors,
            "unique_users": visitors,
            "pageviews": pageviews,
            "events": events,
            "total_events": pageviews + events,
            "sessions": sessions,
            "total_sessions": sessions,
            "bounce_rate": _pct(sum(1 for v in mine_v if v["is_bounce"]), sessions),
            "visit_duration": round(sum(v["duration_s"] for v in mine_v) / sessions)
            if sessions
            else 0,
            "views_per_visit": round(sum(v["pageviews"] for v in mine_v) / sessions, 2)
            if sessions
            else 0.0,
            **split,
            "agent_share": _pct(split["agents"], sum(split.values())),
        }
        row = dict(zip(group_by, key, strict=True))
        row.update({m: values[m] for m in metrics})
        rows.append(row)
    rows.sort(key=lambda r: tuple((r[n] is None, r[n] or "") for n in group_by))
    field = order_by or metrics[0]
    if descending is None:
        descending = field in metrics
    if field in metrics:
        rows.sort(key=lambda r: r[field], reverse=descending)
    else:
        rows.sort(key=lambda r: (r[field] is None, r[field] or ""), reverse=descending)
    return rows[:limit]
