"""Retention: cohorts of users by the day or week they were first seen, and who came back.

Identity: retention needs an id that lasts across days, and the visitor id does
not (a hash with a daily salt, by design: a visitor id can never show a return on
another day). So retention follows `user_id`, the id that identify calls and
server-side senders put on events; events without one are left out and counted in
`unidentified_events`, so a report of all zeros says why. The response names the
identity it used.

Rules, in the site's calendar (weeks start on Monday):
- the range is the last `periods` days or weeks up to now (or since/until, widened
  to whole periods); only events in it that pass the filters and classification count;
- a user's cohort is the period of their first such event in the range (users active
  before the range are not told apart from new ones: the query never reads history);
- `returning[k]` counts the cohort's users with an event k periods after their cohort
  period, `returning[0]` being the cohort size; the current period counts although
  it is not over;
- `average_rates[k]` is the returning users at offset k over the users of every
  cohort old enough to have an offset k (so `average_rates[0]` is 1.0). Rates are 0-1.

The SQL: distinct (user, period) pairs of the range, each user's first period, and a
count per (cohort, offset). The pairs of whole UTC days with a fresh roll-up come from
`rollup_users` (a day's distinct users, not its hits; on a site outside UTC, each
user-day's first and last hit place it in the local days it touched) and only the
rest (today, the edges, days not built) from the raw events.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, bindparam, func, literal, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics import rollups
from pulse.analytics.buckets import bucket_starts
from pulse.analytics.dimensions import EVENTS
from pulse.analytics.funnel import roomy_sorts
from pulse.analytics.query import Query, SiteLike, parse_query
from pulse.analytics.sql import bucket_key, events_where, in_days, selected
from pulse.errors import ValidationFailed
from pulse.extensions import db
from pulse.models import RollupUser
from pulse.models.rollup import USER_SPANS_LAYOUT

GRAINS = ("day", "week")
GRAIN_ALIASES = {"daily": "day", "days": "day", "weekly": "week", "weeks": "week"}
GRAIN_PARAMS = ("cohort", "cohort_period", "interval", "granularity", "period")
MAX_PERIODS = {"day": 92, "week": 52}
DEFAULT_PERIODS = 8
IDENTITY = "user_id"


def _grain(value: str | None) -> str | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    lowered = GRAIN_ALIASES.get(lowered, lowered)
    return lowered if lowered in GRAINS else None


def parse_retention(
    site: SiteLike,
    args: Mapping[str, str],
    *,
    now: datetime | None = None,
    first_seen: Callable[[], datetime | None] | None = None,
) -> tuple[Query, str]:
    """(Query, grain) from request arguments: `period=day|week` (or `cohort`), `periods`.

    `period` names the grain when it is day or week (seed 002 style) and a range
    (7d, 30d ...) otherwise; without since/until or a range, the range is the last
    `periods` periods, the current one included.
    """
    given = {k: v for k, v in args.items() if v is not None and v != ""}
    grain = "week"
    for name in GRAIN_PARAMS:
        if name in given:
            found = _grain(given[name])
            if found is not None:
                grain = found
                given.pop(name)
                break
            if name != "period":
                raise ValidationFailed(
                    "Invalid query parameters.", errors={name: ["Use day or week."]}
                )
    raw = given.pop("periods", None)
    periods = DEFAULT_PERIODS
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PERIODS[grain]:
            raise ValidationFailed(
                "Invalid query parameters.",
                errors={"periods": [f"An integer from 1 to {MAX_PERIODS[grain]} for {grain}s."]},
            )
        periods = int(raw)
    ranged = any(name in given for name in ("since", "range", "period"))
    probe = parse_query(site, given, now=now, first_seen=first_seen)
    if not ranged:
        today = probe.now.astimezone(probe.tz).date()
        first = today - timedelta(days=periods - 1)
        if grain == "week":
            first = today - timedelta(days=today.weekday(), weeks=periods - 1)
        probe = parse_query(site, {**given, "since": first.isoformat()}, now=now)
    elif grain == "week" or probe.start.astimezone(probe.tz).time() != datetime.min.time():
        # Whole periods: widen the start to the first period's local start.
        first_bucket = bucket_starts(probe.tz, probe.start, probe.end, grain)
        if first_bucket:
            probe = probe.window(first_bucket[0].start, probe.end)
    count = len(bucket_starts(probe.tz, probe.start, probe.end, grain))
    if count > MAX_PERIODS[grain]:
        raise ValidationFailed(
            "Invalid query parameters.",
            errors={"since": [f"At most {MAX_PERIODS[grain]} {grain}s of cohorts."]},
        )
    return probe, grain


class LocalDay(ColumnElement[int]):
    """Days since 1970-01-01 on the site's calendar: PostgreSQL converts with its own
    zone data (fast date arithmetic); elsewhere `bucket_key`'s offset segments."""

    type = Integer()
    inherit_cache = False

    def __init__(self, column: ColumnElement[Any], q: Query) -> None:
        self.column, self.zone = column, q.timezone
        self.portable = bucket_key(column, q, "day")


@compiles(LocalDay)
def _local_day_default(element: LocalDay, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.portable, **kw)


@compiles(LocalDay, "postgresql")
def _local_day_postgresql(element: LocalDay, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    zone = compiler.process(bindparam(None, element.zone, String()), **kw)
    return f"((({column}) AT TIME ZONE {zone})::date - DATE '1970-01-01')"


def _raw_periods(part: Query, q: Query, grain: str) -> Any:
    """(u, p, n) from the raw events of `part` (a window of q), periods in q's calendar."""
    where = [*events_where(part)]
    chosen = selected(EVENTS.c.label, part.labels)
    if chosen is not None:
        where.append(chosen)
    user = func.nullif(EVENTS.c.user_id, "")
    day = LocalDay(EVENTS.c.ts, q)
    period = day if grain == "day" else (day + 3) // 7
    hits = select(user.label("u"), period.label("p")).where(*where).subquery("hits")
    return select(hits.c.u, hits.c.p, func.count().label("n")).group_by(hits.c.u, hits.c.p)


def _spans(q: Query, runs: rollups.Runs, grain: str) -> Any:
    """(u, p, n) of roll-up days for a site outside UTC: a UTC day touches at most two
    of its local days, and a user was in the one of their first hit and the one of
    their last (both, when those differ). The events count goes with the first."""
    t = RollupUser.__table__.c
    where = [t.site_id == q.site_id, in_days(t.day, runs)]
    chosen = selected(t.label, q.labels)
    if chosen is not None:
        where.append(chosen)

    def period(column: ColumnElement[Any]) -> ColumnElement[int]:
        day = LocalDay(column, q)
        return day if grain == "day" else (day + 3) // 7

    first = select(t.user_id.label("u"), period(t.first_seen).label("p"), t.events.label("n"))
    last = select(t.user_id.label("u"), period(t.last_seen).label("p"), literal(0).label("n"))
    both = union_all(first.where(*where), last.where(*where)).subquery("spans")
    return select(both.c.u, both.c.p, func.sum(both.c.n).label("n")).group_by(both.c.u, both.c.p)


def cohort_counts(q: Query, grain: str) -> tuple[dict[tuple[int, int], int], int]:
    """({(cohort key, offset): users}, events without a user_id), in one statement.

    Pairs (user, period) with their event count; each user's first period by a
    window over the (small) pairs; then users per (cohort, offset). The NULL user
    gathers the events without a user_id.
    """
    roomy_sorts()
    runs: rollups.Runs = []
    utc = rollups.utc_calendar(q, "day")
    if not q.filters:
        runs = rollups.covered(q) if utc else rollups.covered(q, layout=USER_SPANS_LAYOUT)
    parts = [_raw_periods(part, q, grain) for part in rollups.not_covered(q, runs)]
    if runs:
        parts.append(rollups.user_periods(q, runs, grain) if utc else _spans(q, runs, grain))
    if not parts:
        return {}, 0
    every = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("every")
    pairs = (
        select(every.c.u, every.c.p, func.sum(every.c.n).label("n"))
        .group_by(every.c.u, every.c.p)
        .subquery("pairs")
    )
    cohort = func.min(pairs.c.p).over(partition_by=pairs.c.u)
    ranked = select(
        pairs.c.u.is_(None).label("anonymous"),
        cohort.label("c"),
        pairs.c.p,
        pairs.c.n,
    ).subquery("ranked")
    offset = ranked.c.p - ranked.c.c
    statement = select(
        ranked.c.anonymous,
        ranked.c.c,
        offset.label("k"),
        func.count().label("users"),
        func.sum(ranked.c.n).label("events"),
    ).group_by(ranked.c.anonymous, ranked.c.c, offset)
    found: dict[tuple[int, int], int] = {}
    unidentified = 0
    for row in db.session.execute(statement):
        if row.anonymous:
            unidentified += int(row.events)
        else:
            found[(int(row.c), int(row.k))] = int(row.users)
    return found, unidentified


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def retention(q: Query, grain: str) -> dict[str, Any]:
    """Cohorts (first-seen period, size, returning per offset, rates) and `average_rates`."""
    grid, unidentified = cohort_counts(q, grain)
    buckets = bucket_starts(q.tz, q.start, q.end, grain)
    last = buckets[-1].key if buckets else 0
    cohorts = []
    for bucket in buckets:
        size = grid.get((bucket.key, 0), 0)
        returning = [grid.get((bucket.key, k), 0) for k in range(last - bucket.key + 1)]
        cohorts.append(
            {
                "cohort": bucket.label,
                "start": bucket.start.isoformat().replace("+00:00", "Z"),
                "size": size,
                "returning": returning,
                "rates": [_ratio(n, size) for n in returning],
            }
        )
    average = []
    for k in range(len(buckets)):
        old_enough = [c for c in cohorts if len(c["returning"]) > k]
        users = sum(c["size"] for c in old_enough)
        back = sum(c["returning"][k] for c in old_enough)
        average.append(1.0 if k == 0 else _ratio(back, users))
    return {
        "period": grain,
        "periods": len(buckets),
        "identity": IDENTITY,
        "users": sum(c["size"] for c in cohorts),
        "unidentified_events": unidentified,
        "cohorts": cohorts,
        "average_rates": average,
    }
