"""Seed 002's heatmap: traffic by day of the week and hour of the day, in the site's zone.

A cell's visitors are distinct visitor ids among the cell's hits over the whole
range (SQL groups by the local weekday and hour, so nothing is summed twice). The
offset of the zone is applied per DST segment of the range, as in the time series,
so a hit at 01:30 on the fall-back day lands in hour 1 whichever 01:30 it was.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, literal
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics import raw
from pulse.analytics.buckets import offset_segments
from pulse.analytics.dimensions import EVENTS
from pulse.analytics.expressions import EpochSeconds
from pulse.analytics.formatting import split
from pulse.analytics.query import Query
from pulse.errors import ValidationFailed

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
METRICS = ("visitors", "pageviews", "events")


def local_cell(column: ColumnElement[Any], q: Query) -> ColumnElement[int]:
    """weekday * 24 + hour of a UTC timestamp column on the site's wall clock (Monday = 0)."""
    segments = offset_segments(q.tz, q.start, q.end) if q.end > q.start else [(q.end, 0)]
    offset: ColumnElement[int]
    if len(segments) == 1:
        offset = literal(segments[0][1])
    else:
        offset = case(
            *[(column < until, seconds) for until, seconds in segments[:-1]],
            else_=segments[-1][1],
        )
    local = EpochSeconds(column) + offset
    # 1970-01-01 was a Thursday (weekday 3).
    return ((local // 86400 + 3) % 7) * 24 + (local % 86400) // 3600


def heatmap(q: Query, metric: str = "visitors") -> dict[str, Any]:
    """Cells with traffic (sparse `heatmap`), the full 7x24 `grid` of `metric`, and the peak."""
    if metric not in METRICS:
        raise ValidationFailed(
            "Invalid query parameters.", errors={"metric": [f"Use one of: {', '.join(METRICS)}."]}
        )
    cells = []
    grid = [[0] * 24 for _ in DAYS]
    rows = sorted(raw.event_counts(q, local_cell(EVENTS.c.ts, q)), key=lambda r: r["g"])
    for row in rows:
        if not row["visitors"]:
            continue
        day, hour = divmod(int(row["g"]), 24)
        cell = {
            "day": day,
            "day_name": DAYS[day],
            "hour": hour,
            "visitors": row["visitors"],
            "pageviews": row["pageviews"],
            "events": row["events"],
            **split(row),
        }
        cells.append(cell)
        grid[day][hour] = cell[metric]
    peak = None
    if cells:
        best = max(
            cells,
            key=lambda c: (c[metric], c["visitors"], c["pageviews"], -c["day"], -c["hour"]),
        )
        peak = {k: best[k] for k in ("day", "day_name", "hour", "visitors", "pageviews", "events")}
    return {
        "timezone": q.timezone,
        "metric": metric,
        "days": list(DAYS),
        "heatmap": cells,
        "grid": grid,
        "peak": peak,
    }
