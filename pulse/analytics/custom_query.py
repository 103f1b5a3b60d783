"""Seed 002's flexible query: `metrics` grouped by `group_by`, filtered, ordered, limited.

Built on the same layer as every report, so it means the same numbers and gets
faster with it: the range, filters and classification become a `Query` (through
`parse_query`, so they are checked the same way), and the counts come from
`raw.event_counts` / `raw.visit_counts` grouped by one key expression (several
`group_by` fields are joined into one text key and split again here).

Which table answers which metric follows the breakdowns: grouped by a session
dimension (source, channel, referrer, utm_source/medium/campaign, entry/exit
page), every metric counts visits; otherwise visitors, pageviews and events count
hits, and sessions, bounce rate, duration and views per visit count visits (which
then need a dimension visits have: country, browser, os, device, agent or a time).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, literal
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics import raw
from pulse.analytics.buckets import INTERVALS, MAX_BUCKETS, bucket_count, bucket_starts
from pulse.analytics.dimensions import ALIASES, DIMENSIONS, EVENTS, VISITS, Dimension, dimension
from pulse.analytics.formatting import rate, split, with_share
from pulse.analytics.query import MAX_LIMIT, NONE_VALUE, Query, SiteLike, parse_query
from pulse.analytics.sql import bucket_key
from pulse.errors import ValidationFailed

HIT_ONLY = ("events", "total_events")
VISIT_ONLY = ("sessions", "total_sessions", "bounce_rate", "visit_duration", "views_per_visit")
METRICS = (
    "visitors",
    "unique_users",
    "pageviews",
    *HIT_ONLY,
    *VISIT_ONLY,
    "humans",
    "agents",
    "bots",
    "agent_share",
)
TIME_ALIASES = {"date": "day", "hourly": "hour", "daily": "day", "weekly": "week"}
OPERATORS = ("eq", "in")
OPERATOR_ALIASES = {"=": "eq", "==": "eq", "is": "eq", "equals": "eq"}
DIRECTIONS = ("asc", "desc")
RANGE_FIELDS = ("range", "period", "since", "until", "classification")
MAX_GROUP_BY = 3
DEFAULT_LIMIT = 100
SEP = "\x1f"  # joins group_by values into one key; NULL becomes NULL_MARK
NULL_MARK = "\x1e"


def allowed_dimensions() -> list[str]:
    """The names group_by and filters accept (custom properties as prop.<key>)."""
    return [*DIMENSIONS, *ALIASES, *INTERVALS, *TIME_ALIASES, "prop.<key>"]


class _Errors(dict[str, list[str]]):
    def add(self, name: str, message: str) -> None:
        self.setdefault(name, []).append(message)


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _dimension(name: str) -> Dimension | str:
    """A Dimension, or a time interval name; ValueError for anything else."""
    lowered = name.strip()
    if lowered in INTERVALS or lowered in TIME_ALIASES:
        return TIME_ALIASES.get(lowered, lowered)
    return dimension(lowered)


def _group_by(raw_names: Any, errors: _Errors) -> list[tuple[str, Dimension | str]]:
    found: list[tuple[str, Dimension | str]] = []
    names = _listed(raw_names)
    if len(names) > MAX_GROUP_BY:
        errors.add("group_by", f"At most {MAX_GROUP_BY} fields.")
        return []
    for name in names:
        try:
            found.append((name, _dimension(name)))
        except ValueError:
            errors.add(
                "group_by",
                f"Unknown dimension {name[:64]!r}. Allowed: {', '.join(allowed_dimensions())}.",
            )
    if len({n for n, _ in found}) < len(found):
        errors.add("group_by", "Each field once.")
    return found


def _metrics(raw_names: Any, errors: _Errors) -> list[str]:
    names = _listed(raw_names) or ["visitors"]
    for name in names:
        if name not in METRICS:
            errors.add("metrics", f"Unknown metric {name[:64]!r}. Allowed: {', '.join(METRICS)}.")
    if len(set(names)) < len(names):
        errors.add("metrics", "Each metric once.")
    return names


def _text(value: Any) -> str:
    if value is None:
        return NONE_VALUE
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _filters(raw_filters: Any, errors: _Errors) -> dict[str, str]:
    """Filters as the query-string arguments parse_query reads (`name=a|b`)."""
    items: list[tuple[str, str, Any]] = []
    if isinstance(raw_filters, Mapping):
        items = [(k, "in" if isinstance(v, list) else "eq", v) for k, v in raw_filters.items()]
    else:
        items = [(f["field"], f.get("op") or "eq", f.get("value")) for f in raw_filters or []]
    args: dict[str, str] = {}
    for name, op, value in items:
        op = OPERATOR_ALIASES.get(op, op)
        if op not in OPERATORS:
            errors.add("filters", f"Unknown operator {op[:20]!r}. Allowed: {', '.join(OPERATORS)}.")
            continue
        try:
            dim = dimension(name)
        except ValueError:
            errors.add(
                "filters",
                f"Unknown dimension {name[:64]!r}. Allowed: "
                f"{', '.join([*DIMENSIONS, *ALIASES, 'prop.<key>'])}.",
            )
            continue
        values = _listed(value)
        if not values or (op == "eq" and len(values) > 1):
            errors.add("filters", f"{name[:64]}: eq takes one value, in a list of values.")
            continue
        if any(isinstance(v, dict | list) for v in values):
            errors.add("filters", f"{name[:64]}: values are strings, numbers, booleans or null.")
            continue
        args[dim.name] = "|".join(_text(v) for v in values)
    return args


def _key(q: Query, dims: list[Dimension | str], side: str) -> tuple[Any, bool, dict[str, str]]:
    """One grouping expression over events or visits, whether it is a joined text key,
    and what it is (`dimension=` / `interval=`), so roll-ups may answer a single field."""
    if not dims:
        return None, False, {}
    column = EVENTS.c.ts if side == "hits" else VISITS.c.started_at
    parts: list[ColumnElement[Any]] = []
    for d in dims:
        if isinstance(d, str):
            parts.append(bucket_key(column, q, d))
        else:
            parts.append(d.on_events() if side == "hits" else d.on_visits())
    if len(parts) == 1:
        only = dims[0]
        hint = {"interval": only} if isinstance(only, str) else {"dimension": only.name}
        return parts[0], False, hint
    joined: ColumnElement[Any] = func.coalesce(cast(parts[0], String), literal(NULL_MARK))
    for part in parts[1:]:
        joined = joined.concat(SEP).concat(func.coalesce(cast(part, String), literal(NULL_MARK)))
    return joined, True, {}


def _values(key: Any, joined: bool, count: int) -> tuple[Any, ...]:
    if count == 0:
        return ()
    if not joined:
        return (key,)
    parts = str(key).split(SEP)
    if len(parts) != count:  # a value held the separator: keep the text whole
        parts = [*parts[: count - 1], SEP.join(parts[count - 1 :])]
    return tuple(None if p == NULL_MARK else p for p in parts)


def _metric_values(
    h: dict[str, Any] | None, v: dict[str, Any] | None, by_visits: bool
) -> dict[str, Any]:
    """Every metric of one group from its hit row and visit row (either may be missing)."""
    counted = (v if by_visits else h) or {}
    sessions = v["sessions"] if v else 0
    events = h["events"] if h else 0
    values = {
        "visitors": counted.get("visitors", 0),
        "pageviews": counted.get("pageviews", 0),
        "events": events,
        "total_events": counted.get("pageviews", 0) + events,
        "sessions": sessions,
        "bounce_rate": rate(v["bounces"], sessions) if v else 0.0,
        "visit_duration": round(v["duration"] / sessions) if sessions else 0,
        "views_per_visit": round(v["pageviews"] / sessions, 2) if sessions else 0.0,
        **with_share(split(v if by_visits else h)),
    }
    values["unique_users"] = values["visitors"]
    values["total_sessions"] = sessions
    return values


def _check_sides(
    metrics: list[str], group: list[tuple[str, Dimension | str]], errors: _Errors
) -> tuple[bool, bool, bool]:
    """(by_visits, need_hits, need_visits) for the metrics and dimensions asked."""
    dims = [d for _, d in group]
    by_visits = any(isinstance(d, Dimension) and d.session_scoped for d in dims)
    if by_visits:
        hit_only = [n for n, d in group if isinstance(d, Dimension) and d.visit_column is None]
        if hit_only:
            errors.add(
                "group_by",
                f"{', '.join(hit_only)} cannot be grouped with session dimensions.",
            )
        for name in metrics:
            if name in HIT_ONLY:
                errors.add("metrics", f"{name} counts hits: not available by session dimensions.")
        return True, False, True
    need_visits = any(m in VISIT_ONLY for m in metrics)
    if need_visits:
        no_visits = [n for n, d in group if isinstance(d, Dimension) and d.visit_column is None]
        if no_visits:
            errors.add(
                "metrics",
                f"Session metrics ({', '.join(VISIT_ONLY)}) cannot be grouped by "
                f"{', '.join(no_visits)}; use entry_page or exit_page for pages.",
            )
    return False, True, need_visits


def _order(
    spec: Mapping[str, Any], metrics: list[str], names: list[str], errors: _Errors
) -> tuple[str, bool]:
    """(field, descending) from `order_by` (a leading `-` means descending) and `order`."""
    field = spec.get("order_by")
    direction = spec.get("order")
    if direction is not None and direction.lower() not in DIRECTIONS:
        if field is None:  # `order: "visitors"` names the field
            field, direction = direction, None
        else:
            errors.add("order", "Use asc or desc.")
            direction = None
    descending: bool | None = None
    if field is not None and field.startswith("-"):
        field, descending = field[1:], True
    field = field or metrics[0]
    if field not in metrics and field not in names:
        errors.add(
            "order_by",
            f"Order by one of the metrics or group_by fields: {', '.join(metrics + names)}.",
        )
    if direction is not None:
        descending = direction.lower() == "desc"
    if descending is None:
        descending = field in metrics
    return field, descending


def run(
    site: SiteLike,
    spec: Mapping[str, Any],
    *,
    now: datetime | None = None,
    first_seen: Callable[[], datetime | None] | None = None,
) -> dict[str, Any]:
    """Answer one query; `spec` is the request body as plain values (see the module doc)."""
    errors = _Errors()
    metrics = _metrics(spec.get("metrics"), errors)
    group = _group_by(spec.get("group_by"), errors)
    args = {k: _text(spec[k]) for k in RANGE_FIELDS if spec.get(k) is not None}
    if isinstance(spec.get("classification"), list):
        args["classification"] = ",".join(_text(v) for v in spec["classification"])
    args.update(_filters(spec.get("filters"), errors))
    limit = spec.get("limit") or DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        errors.add("limit", f"An integer from 1 to {MAX_LIMIT}.")
    names = [n for n, _ in group]
    field, descending = _order(spec, metrics, names, errors)
    by_visits, need_hits, need_visits = _check_sides(metrics, group, errors)
    try:
        q = parse_query(site, args, now=now, first_seen=first_seen)
    except ValidationFailed as exc:
        for name, messages in (exc.errors or {}).items():
            for message in messages:
                errors.add(name if name in RANGE_FIELDS else "filters", message)
        q = None
    if q is not None:
        for _, d in group:
            if isinstance(d, str) and bucket_count(q.start, q.end, d) > MAX_BUCKETS:
                errors.add("group_by", f"At most {MAX_BUCKETS} {d}s: choose a longer interval.")
    if errors or q is None:
        raise ValidationFailed("Invalid query.", errors=dict(errors))

    dims = [d for _, d in group]
    hits: dict[Any, dict[str, Any]] = {}
    visits: dict[Any, dict[str, Any]] = {}
    joined = False
    if need_hits:
        key, joined, hint = _key(q, dims, "hits")
        hits = {r.get("g"): r for r in raw.event_counts(q, key, **hint)}
    if need_visits:
        key, joined, hint = _key(q, dims, "visits")
        visits = {r.get("g"): r for r in raw.visit_counts(q, key, **hint)}
    labels = {
        d: {b.key: b.label for b in bucket_starts(q.tz, q.start, q.end, d)}
        for d in dims
        if isinstance(d, str)
    }

    rows = []
    for g in dict.fromkeys([*hits, *visits]):
        h, v = hits.get(g), visits.get(g)
        values = _metric_values(h, v, by_visits)
        if group and not (values["visitors"] or values["sessions"]):
            continue
        raw_values = _values(g, joined, len(dims))
        sort_values: list[Any] = []
        row: dict[str, Any] = {}
        for (name, d), value in zip(group, raw_values, strict=True):
            if isinstance(d, str):
                number = int(value)
                row[name] = labels[d].get(number)
                sort_values.append((False, number))
            else:
                row[name] = value
                sort_values.append((value is None, value or ""))
        row.update({m: values[m] for m in metrics})
        rows.append((row, tuple(sort_values)))
    if not group and not rows:
        rows.append(({m: _metric_values(None, None, by_visits)[m] for m in metrics}, ()))

    rows.sort(key=lambda r: r[1])
    if field in metrics:
        rows.sort(key=lambda r: r[0][field], reverse=descending)
    else:
        index = names.index(field)
        rows.sort(key=lambda r: r[1][index], reverse=descending)
    return {
        "metrics": metrics,
        "group_by": names,
        "order_by": field,
        "order": "desc" if descending else "asc",
        "limit": limit,
        "total_rows": len(rows),
        "rows": [r for r, _ in rows[:limit]],
        "query": q.describe(),
    }
