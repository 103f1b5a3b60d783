"""Daily roll-ups: build them from raw rows, keep them fresh, and read them for raw.py.

Life of a day (one site, one UTC day):
1. `note_written` (called by store.write in the writer's transaction) makes sure the
   day has a `rollup_days` row; a write to a day that is already over, or a late
   write to the current one (older than `LATE`), bumps its `version`, since the
   roll-up may no longer match the raw rows.
2. `refresh_due` (the periodic job `refresh_rollups`, or `pulse rollups refresh`)
   builds each closed day whose `built_version` is not its `version` (or whose
   `layout` is older than ROLLUP_LAYOUT), from the raw `events` and `visits` of that
   day, in one transaction per day; on PostgreSQL also the day's journeys
   (journeys.py), which funnels read. It also rolls up the hits of each day not yet
   over up to a `cut` (`LATE` ago): see "The current day" below.
3. `pieces` finds the fresh roll-ups that answer a range; raw.py reads them from
   `rollup_hits` / `rollup_visits`, today's hits and visits as below, and the rest of
   the range (partial days at the edges, days not built) from the raw tables, and
   adds them up. Visitor ids rotate with the UTC day, so the sum is exact.
   (`covered` gives the whole days, for the tables that have no parts.)

Sites in another time zone: a closed day's build also writes the hits, visits and
journeys of its two parts, HEAD before the site's local midnight inside the UTC day (`split`)
and TAIL from it. A local day is the TAIL of one UTC day plus the HEAD of the next,
so day, week and month series, and ranges of local days, are sums of pieces. Two
spans of one UTC day may hold the same visitor, so `pieces` never puts a part of a
day beside another part or raw hits of that day in one sum.

A day is built only once it has been over for `SETTLE` minutes: a write that
checked "is this day over?" just before midnight has committed by then.

The current day: its `rollup_hits` (and journeys) hold the hits before `cut`. A
visitor's share of a roll-up row depends only on their own hits, so for the hits up
to a later moment it is enough to swap the shares of the visitors seen since the cut
(the "tail"): raw.py adds their hits up to that moment and subtracts their hits
before the cut, both read raw (`since_cut`); funnel.py does the same with journeys.
An open visit keeps changing, so the current day's roll-up holds only the visits
last seen before `settled`, a visit timeout before the cut: a later hit starts a new
visit instead (one continuing such a visit by its session id, like a late write,
bumps the day's version). The visitors with a hit since `settled` are swapped the
same way (`since_settled`): raw.py adds all their visits and subtracts those last
seen before `settled`, which are the ones the roll-up holds.

What a roll-up answers: totals and one dimension of `HIT_DIMENSIONS` (hits) or
`VISIT_DIMENSIONS` (visits), for any classification, with at most a filter on that
same dimension. Totals and day series under several filters on the client
dimensions (country, browser, OS, device, agent: what a visitor's IP address and
user agent, the inputs of its id, fix) read the `@client` rows, which hold each
combination of those values. Property filters, other filters together, hourly
buckets and time-of-day questions go to the raw tables. A whole day's build also
writes each agent's hits per page (`rollup_agent_pages`, read by agents.py) and each
user's hits (`rollup_users`, read by retention.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    BigInteger,
    String,
    and_,
    any_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics import journeys
from pulse.analytics.buckets import key_of, month_starts, offset_segments
from pulse.analytics.dimensions import EVENTS, VISITS
from pulse.analytics.expressions import DayNumber
from pulse.analytics.query import LABELS, Filter, Query, local_midnight
from pulse.analytics.sql import in_days, selected
from pulse.extensions import db
from pulse.ingest.sessions import TIMEOUT as VISIT_TIMEOUT
from pulse.models import (
    RollupAgentPage,
    RollupDay,
    RollupHit,
    RollupUser,
    RollupVisit,
    Site,
    utcnow,
)
from pulse.models.rollup import (
    HEAD,
    JOURNEY_PARTS_LAYOUT,
    LABEL_BITS,
    PARTS_LAYOUT,
    ROLLUP_LAYOUT,
    TAIL,
    WHOLE,
)

log = logging.getLogger(__name__)

SETTLE = timedelta(minutes=10)
# A write to the current day older than this may fall before its cut: it bumps the
# day's version. Browsers' hits are stamped when accepted and stored seconds later.
LATE = timedelta(minutes=5)
# How old a current day's cut may get before refresh_due moves it on.
CUT_EVERY = timedelta(minutes=4)
Runs = list[tuple[datetime, datetime]]  # [start, end) of consecutive UTC days, UTC midnights
ALL_BITS = sum(LABEL_BITS.values())
# Dimension name -> column of events / visits ("" is the site's total).
HIT_DIMENSIONS: dict[str, str | None] = {
    "": None,
    "page": "pathname",
    "hostname": "hostname",
    "event": "name",
    "country": "country",
    "browser": "browser",
    "os": "os",
    "device": "device",
    "agent": "agent_name",
    "agent_category": "agent_category",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
}
VISIT_DIMENSIONS: dict[str, str | None] = {
    "": None,
    "entry_page": "entry_path",
    "exit_page": "exit_path",
    "source": "source",
    "channel": "channel",
    "referrer": "referrer_host",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "country": "country",
    "browser": "browser",
    "os": "os",
    "device": "device",
    "agent": "agent_name",
    "agent_category": "agent_category",
}
CLIENT = "@client"
# The client dimensions and their columns (the same on events and visits), in the
# order of the JSON array a `@client` row's value holds.
CLIENT_DIMENSIONS = {
    name: str(HIT_DIMENSIONS[name])
    for name in ("country", "browser", "os", "device", "agent", "agent_category")
}
CLIENT_COLUMNS = tuple(CLIENT_DIMENSIONS.values())
VISIT_SUMS = ("pageviews", "bounces", "duration", "scored", "score")
DAY = "@day"  # not a dimension: group by the roll-up's day (time series of UTC sites)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _utc_day(ts: datetime) -> date:
    return (ts if ts.tzinfo is None else ts.astimezone(UTC)).date()


# --- keeping track of what changed ---------------------------------------------------


def note_written(rows: Iterable[dict[str, Any]], now: datetime | None = None) -> None:
    """Record the days these stored rows (and the visits they touched) belong to.

    Rows carry `visit_starts` (set by sessions.assign): when their visit started before
    and after the row, since a late hit changes a visit begun on an earlier day; and
    `visit_seen`, their visit's last hit before them.
    """
    now = now or utcnow()
    today, late = _utc_day(now), _aware(now) - LATE
    settled = late - VISIT_TIMEOUT
    days: dict[tuple[int, date], bool] = {}
    for row in rows:
        site_id = row["site_id"]
        day = _utc_day(row["ts"])
        bump = day < today or _aware(row["ts"]) < late
        days[(site_id, day)] = days.get((site_id, day), False) or bump
        # The current day's roll-up holds only visits last seen a visit timeout before
        # its cut (at most `settled`): a hit that is not late changes one only when it
        # continues it by its session id.
        seen = row.get("visit_seen")
        revived = seen is not None and _aware(seen) < settled
        for ts in row.get("visit_starts", ()):
            day = _utc_day(ts)
            days[(site_id, day)] = days.get((site_id, day), False) or day < today or revived
    _mark(days)


def _mark(days: dict[tuple[int, date], bool]) -> None:
    """Upsert `rollup_days` rows; a closed day (True) gets its version bumped."""
    dialect = db.session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    keys = [RollupDay.site_id, RollupDay.day]
    for closed in (False, True):
        values = [
            {"site_id": site_id, "day": day, "version": 1 if closed else 0}
            for (site_id, day), is_closed in sorted(days.items())
            if is_closed is closed
        ]
        if not values:
            continue
        statement = make(RollupDay).values(values)
        if closed:
            statement = statement.on_conflict_do_update(
                index_elements=keys, set_={"version": RollupDay.version + 1}
            )
        else:
            statement = statement.on_conflict_do_nothing(index_elements=keys)
        db.session.execute(statement)


def zone_changed(site_id: int) -> None:
    """A site's time zone changes: its days' parts now split at the wrong midnight.

    Readers already ignore them (pieces checks the split), and the WHOLE rows stay
    right, so the days are not made stale: they are marked as of the layout before
    parts, and refresh_due rebuilds them in the background.
    """
    db.session.execute(
        update(RollupDay)
        .where(RollupDay.site_id == site_id, RollupDay.layout >= PARTS_LAYOUT)
        .values(layout=PARTS_LAYOUT - 1)
    )


def mark_existing(site_id: int | None = None) -> int:
    """Mark every day that has events as due (data stored before roll-ups existed)."""
    day = func.date(EVENTS.c.ts)
    if db.session.get_bind().dialect.name == "postgresql":
        day = func.date(func.timezone("UTC", EVENTS.c.ts))
    found = select(EVENTS.c.site_id, day).distinct()
    if site_id is not None:
        found = found.where(EVENTS.c.site_id == site_id)
    days = {(sid, _as_date(value)): True for sid, value in db.session.execute(found).all()}
    _mark(days)
    return len(days)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- building ------------------------------------------------------------------------


def _label_bit(label: ColumnElement[str], name: str) -> ColumnElement[int]:
    return func.max(case((label == name, LABEL_BITS[name]), else_=0))


def _count_when(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _built(dimensions: dict[str, str | None]) -> list[tuple[str, str | None]]:
    """The (dim, column) pairs a build writes: the dimensions, then `@client`."""
    return [*dimensions.items(), (CLIENT, None)]


def _core_value(table: Any, name: str, column: str | None) -> ColumnElement[Any]:
    """A row's value of a built dimension: a column, NULL for the total, or for
    `@client` the JSON array of the client columns."""
    if name == CLIENT:
        return func.json_array(*[table.c[c] for c in CLIENT_COLUMNS])
    return table.c[column] if column else literal(None, String)


def _hits_statement(site_id: int, day: date, start: datetime, end: datetime, part: int) -> Any:
    where = (
        EVENTS.c.site_id == site_id,
        EVENTS.c.ts >= start,
        EVENTS.c.ts < end,
        EVENTS.c.name != "session_end",
    )
    parts = [
        select(
            literal(name, String).label("dim"),
            _core_value(EVENTS, name, column).label("value"),
            EVENTS.c.visitor_id,
            EVENTS.c.label,
            EVENTS.c.name,
        ).where(*where)
        for name, column in _built(HIT_DIMENSIONS)
    ]
    hits = union_all(*parts).subquery()
    pageview = hits.c.name == "pageview"
    per_visitor = (
        select(
            hits.c.dim,
            hits.c.value,
            sum((_label_bit(hits.c.label, name) for name in LABELS), literal(0)).label("mask"),
            *[
                _count_when((hits.c.label == name) & pageview).label(f"pageviews_{name}")
                for name in LABELS
            ],
            *[
                _count_when((hits.c.label == name) & ~pageview).label(f"events_{name}")
                for name in LABELS
            ],
        )
        .group_by(hits.c.dim, hits.c.value, hits.c.visitor_id)
        .subquery()
    )
    sums = [f"{metric}_{name}" for metric in ("pageviews", "events") for name in LABELS]
    rows = select(
        literal(site_id),
        literal(day),
        literal(part),
        per_visitor.c.dim,
        per_visitor.c.value,
        per_visitor.c.mask,
        func.count(),
        *[func.sum(per_visitor.c[column]) for column in sums],
    ).group_by(per_visitor.c.dim, per_visitor.c.value, per_visitor.c.mask)
    columns = ["site_id", "day", "part", "dim", "value", "mask", "visitors", *sums]
    return insert(RollupHit).from_select(columns, rows)


def _visits_statement(
    site_id: int, day: date, start: datetime, end: datetime, part: int, settled: datetime | None
) -> Any:
    where = [VISITS.c.site_id == site_id, VISITS.c.started_at >= start, VISITS.c.started_at < end]
    if settled is not None:
        where.append(VISITS.c.last_seen_at < settled)
    scored = VISITS.c.engagement_score.is_not(None)
    parts = [
        select(
            literal(name, String).label("dim"),
            _core_value(VISITS, name, column).label("value"),
            VISITS.c.visitor_id,
            VISITS.c.label,
            VISITS.c.pageviews,
            case((VISITS.c.is_bounce.is_(True), 1), else_=0).label("bounces"),
            VISITS.c.duration_s.label("duration"),
            case((scored, 1), else_=0).label("scored"),
            func.coalesce(VISITS.c.engagement_score, 0.0).label("score"),
        ).where(*where)
        for name, column in _built(VISIT_DIMENSIONS)
    ]
    visits = union_all(*parts).subquery()
    per_label = []
    for name in LABELS:
        is_label = visits.c.label == name
        per_label.append(_count_when(is_label).label(f"sessions_{name}"))
        for metric in VISIT_SUMS:
            value = func.sum(case((is_label, visits.c[metric]), else_=0))
            per_label.append(value.label(f"{metric}_{name}"))
    per_visitor = (
        select(
            visits.c.dim,
            visits.c.value,
            sum((_label_bit(visits.c.label, name) for name in LABELS), literal(0)).label("mask"),
            *per_label,
        )
        .group_by(visits.c.dim, visits.c.value, visits.c.visitor_id)
        .subquery()
    )
    sums = [c.name for c in per_label]
    rows = select(
        literal(site_id),
        literal(day),
        literal(part),
        per_visitor.c.dim,
        per_visitor.c.value,
        per_visitor.c.mask,
        func.count(),
        *[func.sum(per_visitor.c[column]) for column in sums],
    ).group_by(per_visitor.c.dim, per_visitor.c.value, per_visitor.c.mask)
    columns = ["site_id", "day", "part", "dim", "value", "mask", "visitors", *sums]
    return insert(RollupVisit).from_select(columns, rows)


def _lateral_sql(
    table: str,
    time_column: str,
    dimensions: dict[str, str | None],
    per_label: list[str],
    parts: bool,
    settled: bool = False,
) -> str:
    """PostgreSQL: the same roll-up in one scan of the day's rows (a LATERAL VALUES
    fans each row out to its dimensions) instead of one scan per dimension.

    With `parts`, the scan groups per visitor and part (HEAD before `:split`, TAIL
    from it), and each visitor's WHOLE row adds up their two: every column of a
    visitor's row is a bit_or or a sum. (A ROLLUP of the part would do it in one
    grouping, but grouping sets are sorted where hashing does not fit in memory,
    and sorting a day's text values costs twice as much.)"""
    client = f"json_build_array({', '.join('r.' + c for c in CLIENT_COLUMNS)})::text"

    def value(name: str, column: str | None) -> str:
        if name == CLIENT:
            return client
        return f"r.{column}::text" if column else "NULL::text"

    pairs = ", ".join(f"('{name}', {value(name, column)})" for name, column in _built(dimensions))
    bits = " ".join(f"WHEN '{name}' THEN {bit}" for name, bit in LABEL_BITS.items())
    sums = [expr.split(" AS ")[1] for expr in per_label]
    # A visitor's counts as int4 (score as float8): sums of int8 accumulate in numeric,
    # which made the per-visitor grouping of a day's visits several times slower.
    kinds = {c: "float8" if c.startswith("score_") else "int4" for c in sums}
    per_label = [
        f"({expr.split(' AS ')[0]})::{kinds[c]} AS {c}"
        for expr, c in zip(per_label, sums, strict=True)
    ]
    skip = "AND r.name <> 'session_end'" if table == "events" else ""
    if settled:
        skip += " AND r.last_seen_at < :settled"
    part = f"CASE WHEN r.{time_column} < :split THEN {HEAD} ELSE {TAIL} END" if parts else WHOLE
    scan = f"""
            SELECT d.dim, d.value, r.visitor_id, {part} AS part,
                   bit_or(CASE r.label {bits} ELSE 0 END) AS mask, {", ".join(per_label)}
            FROM {table} r CROSS JOIN LATERAL (VALUES {pairs}) AS d(dim, value)
            WHERE r.site_id = :site_id AND r.{time_column} >= :start
              AND r.{time_column} < :end {skip}
            GROUP BY 1, 2, 3, 4"""  # noqa: S608
    if parts:
        per_visitor = f"""
        WITH per_part AS MATERIALIZED ({scan})
        SELECT * FROM per_part
        UNION ALL
        SELECT dim, value, visitor_id, {WHOLE}, bit_or(mask),
               {", ".join(f"sum({c})::{kinds[c]}" for c in sums)}
        FROM per_part GROUP BY dim, value, visitor_id"""  # noqa: S608
    else:
        per_visitor = scan
    # Built once at import from the constants above; the only inputs are bound parameters.
    return f"""
        INSERT INTO rollup_{"hits" if table == "events" else "visits"}
            (site_id, day, part, dim, value, mask, visitors, {", ".join(sums)})
        SELECT :site_id, :day, part, dim, value, mask, count(*),
               {", ".join(f"sum({c})" for c in sums)}
        FROM ({per_visitor}
        ) per_visitor
        GROUP BY part, dim, value, mask
    """  # noqa: S608


def _hit_sums() -> list[str]:
    return [
        f"count(*) FILTER (WHERE r.label = '{name}' AND r.name {op} 'pageview') AS {metric}_{name}"
        for metric, op in (("pageviews", "="), ("events", "<>"))
        for name in LABELS
    ]


def _visit_sums() -> list[str]:
    sums = []
    for name in LABELS:
        when = f"FILTER (WHERE r.label = '{name}')"
        sums += [
            f"count(*) {when} AS sessions_{name}",
            f"coalesce(sum(r.pageviews) {when}, 0) AS pageviews_{name}",
            f"count(*) FILTER (WHERE r.label = '{name}' AND r.is_bounce) AS bounces_{name}",
            f"coalesce(sum(r.duration_s) {when}, 0) AS duration_{name}",
            f"count(r.engagement_score) {when} AS scored_{name}",
            f"coalesce(sum(r.engagement_score) {when}, 0) AS score_{name}",
        ]
    return sums


HITS_SQL = {
    parts: _lateral_sql("events", "ts", HIT_DIMENSIONS, _hit_sums(), parts)
    for parts in (False, True)
}
VISITS_SQL = {
    (parts, settled): _lateral_sql(
        "visits", "started_at", VISIT_DIMENSIONS, _visit_sums(), parts, settled
    )
    for parts in (False, True)
    for settled in (False, True)
}


def _users_statement(site_id: int, day: date) -> Any:
    start, end = _midnight(day), _midnight(day + timedelta(days=1))
    user = func.nullif(EVENTS.c.user_id, "")
    rows = (
        select(
            literal(site_id),
            literal(day),
            user,
            EVENTS.c.label,
            func.count(),
            func.min(EVENTS.c.ts),
            func.max(EVENTS.c.ts),
        )
        .where(
            EVENTS.c.site_id == site_id,
            EVENTS.c.ts >= start,
            EVENTS.c.ts < end,
            EVENTS.c.name != "session_end",
        )
        .group_by(user, EVENTS.c.label)
    )
    columns = ["site_id", "day", "user_id", "label", "events", "first_seen", "last_seen"]
    return insert(RollupUser).from_select(columns, rows)


def _agent_pages_statement(site_id: int, day: date) -> Any:
    start, end = _midnight(day), _midnight(day + timedelta(days=1))
    e = EVENTS.c
    keys = [e.agent_name, e.label, e.agent_category, e.pathname]
    rows = (
        select(
            literal(site_id),
            literal(day),
            *keys,
            func.count(),
            func.count(case((e.name == "pageview", 1))),
            func.min(e.ts),
            func.max(e.ts),
        )
        .where(
            e.site_id == site_id,
            e.ts >= start,
            e.ts < end,
            e.name != "session_end",
            e.agent_name.is_not(None),
        )
        .group_by(*keys)
    )
    columns = ["site_id", "day", "agent_name", "label", "agent_category", "pathname"]
    columns += ["hits", "pageviews", "first_seen", "last_seen"]
    return insert(RollupAgentPage).from_select(columns, rows)


def split_of(day: date, tz: ZoneInfo) -> datetime | None:
    """The local midnight of the zone strictly inside the UTC day, when there is
    exactly one (None for UTC, and for a day a zone's calendar skips or repeats)."""
    start, end = _midnight(day), _midnight(day + timedelta(days=1))
    local = start.astimezone(tz).date()
    inside = [
        moment
        for moment in (local_midnight(local + timedelta(days=n), tz) for n in range(3))
        if start < moment < end
    ]
    return inside[0] if len(inside) == 1 else None


def _site_zone(site_id: int) -> ZoneInfo:
    name = db.session.scalar(select(Site.timezone).where(Site.id == site_id))
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _part_spans(
    day: date, end: datetime, split: datetime | None
) -> list[tuple[int, datetime, datetime]]:
    """(part, start, end) of what a build writes: the whole day (up to `end`), and
    with a split its head and tail."""
    spans = [(WHOLE, _midnight(day), end)]
    if split is not None:
        spans += [(HEAD, _midnight(day), split), (TAIL, split, end)]
    return spans


def build_day(site_id: int, day: date, cut: datetime | None = None) -> None:
    """Replace the roll-up of one site's day with one computed from its raw rows;
    with `cut`, a day not over yet: only its hits before `cut`.

    The caller commits. The version is read first: a write committed while the day
    is built bumps it again, so the day is built once more rather than marked fresh.
    """
    version = db.session.scalar(
        select(RollupDay.version).where(RollupDay.site_id == site_id, RollupDay.day == day)
    )
    if version is None:
        db.session.add(RollupDay(site_id=site_id, day=day, version=0))
        db.session.flush()
        version = 0
    for table in (RollupHit, RollupVisit, RollupUser, RollupAgentPage):
        db.session.execute(delete(table).where(table.site_id == site_id, table.day == day))
    end = cut or _midnight(day + timedelta(days=1))
    # A day not over gets its parts once the cut is past the site's midnight: its
    # HEAD is then complete, its TAIL holds the hits up to the cut.
    split = split_of(day, _site_zone(site_id))
    if split is not None and cut is not None and split >= cut:
        split = None
    # ... and the visits last seen a visit timeout before the cut, which are over.
    settled = cut - VISIT_TIMEOUT if cut is not None else None
    if cut is None:
        db.session.execute(_users_statement(site_id, day))
        db.session.execute(_agent_pages_statement(site_id, day))
    with_journeys = False
    if db.session.get_bind().dialect.name == "postgresql":
        # Hashing a day's rows per visitor and dimension spills to disk at the default
        # 4 MB; a background build can afford more, for this transaction only. The
        # planner would rather sort millions of (dimension, text value, visitor) rows
        # than hash them in batches; at 10M events a day's sort took twice as long.
        db.session.execute(text("SET LOCAL work_mem = '128MB'"))
        db.session.execute(text("SET LOCAL enable_sort = off"))
        bounds = {"site_id": site_id, "day": day, "start": _midnight(day), "end": end}
        parts = split is not None
        db.session.execute(text(HITS_SQL[parts]), {**bounds, "split": split})
        visits = VISITS_SQL[(parts, settled is not None)]
        db.session.execute(text(visits), {**bounds, "split": split, "settled": settled})
        db.session.execute(text("SET LOCAL enable_sort = on"))
        spans = _part_spans(day, end, split)
        with_journeys = journeys.build(site_id, day, bounds, spans)
    else:
        for part, start, part_end in _part_spans(day, end, split):
            db.session.execute(_hits_statement(site_id, day, start, part_end, part))
            visits = _visits_statement(site_id, day, start, part_end, part, settled)
            db.session.execute(visits)
    db.session.execute(
        update(RollupDay)
        .where(RollupDay.site_id == site_id, RollupDay.day == day)
        .values(
            built_version=version,
            built_at=utcnow(),
            layout=ROLLUP_LAYOUT,
            journeys=with_journeys,
            cut=cut,
            split=split,
            settled=settled,
        )
    )


def refresh_due(now: datetime | None = None, limit: int = 500) -> int:
    """Build every settled day whose roll-up is missing, stale or of an older layout,
    then move on the cut of each day not over yet; one commit per day. Returns the
    number of days built (closed and current)."""
    now = _aware(now or utcnow())
    last_closed = _utc_day(now - SETTLE) - timedelta(days=1)
    due = db.session.execute(
        select(RollupDay.site_id, RollupDay.day)
        .where(
            RollupDay.day <= last_closed,
            or_(
                RollupDay.built_version.is_(None),
                RollupDay.built_version != RollupDay.version,
                RollupDay.layout < ROLLUP_LAYOUT,
                RollupDay.cut.is_not(None),
            ),
        )
        .order_by(RollupDay.day.desc(), RollupDay.site_id)
        .limit(limit)
    ).all()
    built = sum(_build(site_id, day) for site_id, day in due)
    return built + _refresh_open(now, last_closed)


def _refresh_open(now: datetime, last_closed: date) -> int:
    """Roll up the hits before `now - LATE` of the days not over (or not settled)."""
    cut = now - LATE
    open_days = db.session.execute(
        select(RollupDay.site_id, RollupDay.day).where(
            RollupDay.day > last_closed,
            RollupDay.day <= _utc_day(now),
            or_(
                RollupDay.cut.is_(None),
                RollupDay.built_version.is_(None),
                RollupDay.built_version != RollupDay.version,
                RollupDay.cut < cut - CUT_EVERY,
            ),
        )
    ).all()
    built = 0
    for site_id, day in open_days:
        day_cut = min(cut, _midnight(day + timedelta(days=1)))
        if day_cut > _midnight(day):
            built += _build(site_id, day, day_cut)
    return built


def _build(site_id: int, day: date, cut: datetime | None = None) -> int:
    """build_day and commit; 1 if built, 0 if it failed (logged, retried next time)."""
    try:
        build_day(site_id, day, cut)
        db.session.commit()
        return 1
    except Exception:
        db.session.rollback()
        log.exception("roll-up of site %s, %s failed", site_id, day)
        return 0


# --- reading -------------------------------------------------------------------------


def covered(q: Query, layout: int = 1) -> Runs:
    """The runs of whole UTC days in the range that fresh roll-ups answer, in order
    (only days built at `layout` or later, for readers of what a later layout added).

    Only days with a fresh `rollup_days` row count: a day without one is read raw
    (cheap when it has no events, right when its events were stored another way).
    """
    first = _utc_day(q.start)
    if _midnight(first) < q.start:
        first += timedelta(days=1)
    last = _utc_day(q.end)  # exclusive: the day holding the end is partial or after it
    if first >= last:
        return []
    fresh = db.session.scalars(
        select(RollupDay.day)
        .where(
            RollupDay.site_id == q.site_id,
            RollupDay.day >= first,
            RollupDay.day < last,
            RollupDay.built_version == RollupDay.version,
            RollupDay.cut.is_(None),
            RollupDay.layout >= layout,
        )
        .order_by(RollupDay.day)
    )
    return _runs(fresh)


def _runs(days: Iterable[date]) -> Runs:
    """Runs of consecutive days, from days in order."""
    runs: list[list[date]] = []
    for day in days:
        if runs and runs[-1][1] == day:
            runs[-1][1] = day + timedelta(days=1)
        else:
            runs.append([day, day + timedelta(days=1)])
    return [(_midnight(start), _midnight(end)) for start, end in runs]


@dataclass(frozen=True)
class Piece:
    """A part of one UTC day's roll-up (WHOLE, HEAD or TAIL) and the instants it spans."""

    day: date
    part: int
    start: datetime
    end: datetime


def pieces(q: Query, interval: str | None = None, with_journeys: bool = False) -> list[Piece]:
    """The roll-up pieces that answer the range, in order: each closed day with a
    fresh roll-up whole where the range (and, for a series of `interval` buckets,
    one bucket) holds it, else a part that is all of the day the range (or a
    bucket) holds. Visitors of two spans of one UTC day may be the same people, so
    the rest of such a day is read raw whole, never beside a part.

    On a site in another time zone a local day is the TAIL of one UTC day and the
    HEAD of the next, so its day series and a range of its days are sums of pieces.
    Only parts split at the local midnight the site's zone has now are used (a day
    built before, or before a change of zone, is read whole or raw). Hourly series
    have no pieces. With `with_journeys`, only pieces of days whose journeys were
    built (parts of days built at JOURNEY_PARTS_LAYOUT or later), for funnel.py.
    """
    if interval == "hour" or q.end <= q.start:
        return []
    tz = q.tz
    days = db.session.execute(
        select(RollupDay.day, RollupDay.split, RollupDay.layout)
        .where(
            RollupDay.site_id == q.site_id,
            RollupDay.day >= _utc_day(q.start),
            RollupDay.day <= _utc_day(q.end),
            RollupDay.built_version == RollupDay.version,
            RollupDay.cut.is_(None),
            *([RollupDay.journeys.is_(True)] if with_journeys else []),
        )
        .order_by(RollupDay.day)
    ).all()
    found = []
    for day, split, layout in days:
        start, end = _midnight(day), _midnight(day + timedelta(days=1))
        if q.start <= start and end <= q.end and one_bucket(q, interval, start, end):
            found.append(Piece(day, WHOLE, start, end))
            continue
        if split is None or _aware(split) != split_of(day, tz):
            continue
        if with_journeys and layout < JOURNEY_PARTS_LAYOUT:
            continue
        split = _aware(split)
        apart = not one_bucket(q, interval, start, end)
        in_range = (max(start, q.start), min(end, q.end))
        for part, part_start, part_end in ((HEAD, start, split), (TAIL, split, end)):
            # Two spans of one UTC day may share visitors: a part answers only when it
            # is all the day has in its bucket. A part lies within one local day.
            if (part_start, part_end) == in_range or (
                apart and q.start <= part_start and part_end <= q.end
            ):
                found.append(Piece(day, part, part_start, part_end))
    return found


def spans(found: Iterable[Piece]) -> Runs:
    """The instants the pieces span, adjacent ones merged (for not_covered)."""
    merged: list[list[datetime]] = []
    for piece in sorted(found, key=lambda p: p.start):
        if merged and merged[-1][1] == piece.start:
            merged[-1][1] = piece.end
        else:
            merged.append([piece.start, piece.end])
    return [(start, end) for start, end in merged]


def one_bucket(q: Query, interval: str | None, start: datetime, end: datetime) -> bool:
    """Whether [start, end) lies within one bucket of the series (any range without one)."""
    if interval is None:
        return True
    months = month_starts(q.tz, q.start, q.end) if interval == "month" else []
    last = end - timedelta(microseconds=1)
    return key_of(start, q.tz, interval, months) == key_of(last, q.tz, interval, months)


def in_pieces(table: Any, found: Iterable[Piece]) -> ColumnElement[bool]:
    """A roll-up table's rows of these pieces."""
    days: dict[int, list[date]] = {}
    for piece in found:
        days.setdefault(piece.part, []).append(piece.day)
    return or_(
        *[
            and_(table.part == part, in_days(table.day, _runs(sorted(part_days))))
            for part, part_days in sorted(days.items())
        ]
    )


def by_client(q: Query, dimension: str | None) -> bool:
    """Whether the `@client` rows answer: a total or a day series under filters all on
    client dimensions that one dimension's rows cannot answer (several filters, or a
    filter of several values)."""
    if dimension not in (None, DAY) or not q.filters:
        return False
    if len(q.filters) == 1 and len(q.filters[0].values) == 1:
        return False
    return all(f.dimension.name in CLIENT_DIMENSIONS for f in q.filters)


def partitioned(table: Any, q: Query, found: list[Piece]) -> list[Piece]:
    """The pieces of days where every visitor has a single `@client` value, the days
    whose `@client` visitors add up to their total visitors (then so do their parts).

    Only there does a sum over the matching combinations count each visitor once; the
    other days (and days built before `@client` rows existed) are read raw.
    """
    t = table.__table__
    total = func.sum(case((t.c.dim == "", t.c.visitors), else_=0))
    client = func.sum(case((t.c.dim == CLIENT, t.c.visitors), else_=0))
    if not found:
        return []
    runs = _runs(sorted({piece.day for piece in found}))
    days = {
        _as_date(day)
        for day in db.session.scalars(
            select(t.c.day)
            .where(
                t.c.site_id == q.site_id,
                in_days(t.c.day, runs),
                t.c.part == WHOLE,
                t.c.dim.in_(("", CLIENT)),
            )
            .group_by(t.c.day)
            .having(total == client)
        )
    }
    return [piece for piece in found if piece.day in days]


def usable(q: Query, dimension: str | None, dimensions: dict[str, str | None]) -> bool:
    """Whether roll-ups can answer this grouping and these filters."""
    grouped = dimension not in (None, DAY)
    if grouped and dimension not in dimensions:
        return False
    if by_client(q, dimension):
        return True
    if len(q.filters) > 1:
        return False
    for f in q.filters:
        if f.dimension.name not in dimensions or f.dimension.name == "":
            return False
        if not grouped and len(f.values) != 1:
            return False  # a visitor of both values would be counted twice
        if grouped and f.dimension.name != dimension:
            return False
    return True


def utc_calendar(q: Query, interval: str) -> bool:
    """Whether the site's days are UTC days over the range, so buckets of whole days
    (day, week, month) are sums of roll-up days."""
    if interval == "hour":
        return False
    return all(offset == 0 for _, offset in offset_segments(q.tz, q.start, q.end))


def by_piece_bucket(
    rows: list[dict[str, Any]], q: Query, interval: str, found: list[Piece]
) -> list[dict[str, Any]]:
    """Rows grouped by DAY (day and part), keyed by the bucket their piece falls in;
    _combine adds up the rows of one bucket."""
    keys = piece_keys(q, interval, found)
    for row in rows:
        row["g"] = keys[(_as_date(row["g"]), row.pop("part"))]
    return rows


def piece_keys(q: Query, interval: str, found: list[Piece]) -> dict[tuple[date, int], int]:
    """(day, part) -> the bucket (sql.bucket_key) each piece falls in."""
    months = month_starts(q.tz, q.start, q.end)
    return {
        (_as_date(piece.day), piece.part): key_of(piece.start, q.tz, interval, months)
        for piece in found
    }


def hits_per_piece(
    q: Query, dimension: str, found: list[Piece], values: list[str]
) -> list[tuple[str, date, int, int]]:
    """(value, day, part, hits): the selected traffic's hits (pageviews and events) of
    some values of a dimension, per piece (a series by value, as agents.py draws)."""
    t = RollupHit.__table__
    hits = _selected_sum(t, "pageviews", q) + _selected_sum(t, "events", q)
    statement = (
        select(t.c.value, t.c.day, t.c.part, hits)
        .where(
            t.c.site_id == q.site_id,
            in_pieces(t.c, found),
            t.c.dim == dimension,
            t.c.value.in_(values),
        )
        .group_by(t.c.value, t.c.day, t.c.part)
    )
    return [(v, _as_date(d), p, int(n or 0)) for v, d, p, n in db.session.execute(statement)]


def _mask_in(mask: ColumnElement[int], bits: int) -> ColumnElement[bool]:
    return mask.op("&")(bits) != 0


def _value_match(value: ColumnElement[Any], f: Filter) -> ColumnElement[bool]:
    concrete = [v for v in f.values if v is not None]
    parts = []
    if concrete:
        parts.append(value.in_(concrete))
    if len(concrete) < len(f.values):
        parts.append(value.is_(None))
    return or_(*parts)


def _client_matches(value: str, filters: tuple[Filter, ...]) -> bool:
    """Whether a `@client` value (a JSON array of CLIENT_COLUMNS) passes every filter."""
    client = dict(zip(CLIENT_DIMENSIONS, json.loads(value), strict=True))
    return all(client[f.dimension.name] in f.values for f in filters)


def _read_client(
    table: Any,
    q: Query,
    dimension: str | None,
    found: list[Piece],
    metrics: list[ColumnElement[Any]],
) -> list[dict[str, Any]]:
    """_read under client filters: sums per combination, those matching added up."""
    group = [table.day.label("g"), table.part.label("part")] if dimension == DAY else []
    statement = (
        select(*group, table.value.label("client"), *metrics)
        .where(table.site_id == q.site_id, in_pieces(table, found), table.dim == CLIENT)
        .group_by(*group, table.value)
    )
    totals: dict[Any, dict[str, Any]] = {}
    for row in db.session.execute(statement).mappings():
        if not _client_matches(row["client"], q.filters):
            continue
        key = (row["g"], row["part"]) if dimension == DAY else None
        into = totals.setdefault(key, {"g": key[0], "part": key[1]} if key else {})
        for name, value in row.items():
            if name not in ("g", "part", "client"):
                into[name] = into.get(name, 0) + (value or 0)
    return list(totals.values())


def _read(
    table: Any,
    q: Query,
    dimension: str | None,
    found: list[Piece],
    metrics: list[ColumnElement[Any]],
) -> list[dict[str, Any]]:
    """Sums over the pieces grouped by `dimension`'s value, or by day and part (DAY:
    rows carry "g" the day and "part", for by_piece_bucket)."""
    if by_client(q, dimension):
        return _read_client(table, q, dimension, found, metrics)
    where = [table.site_id == q.site_id, in_pieces(table, found)]
    if q.filters:
        f = q.filters[0]
        where += [table.dim == f.dimension.name, _value_match(table.value, f)]
    else:
        where.append(table.dim == ("" if dimension in (None, DAY) else dimension))
    if dimension == DAY:
        group = [table.day.label("g"), table.part.label("part")]
    else:
        group = [table.value.label("g")] if dimension is not None else []
    statement = select(*group, *metrics).where(*where)
    if group:
        statement = statement.group_by(*group)
    rows = []
    for row in db.session.execute(statement).mappings():
        rows.append({k: (v if v is not None or k == "g" else 0) for k, v in row.items()})
    return rows


def _bits(q: Query) -> int:
    labels = q.labels if q.labels is not None else LABELS
    return sum(LABEL_BITS[name] for name in labels)


def _selected_sum(table: Any, metric: str, q: Query) -> ColumnElement[Any]:
    labels = q.labels if q.labels is not None else LABELS
    return sum((func.sum(table.c[f"{metric}_{name}"]) for name in labels), literal(0))


def hit_counts(q: Query, dimension: str | None, found: list[Piece]) -> list[dict[str, Any]]:
    """`raw.event_counts` columns for the pieces, from `rollup_hits`."""
    t = RollupHit.__table__
    metrics = [
        func.sum(case((_mask_in(t.c.mask, _bits(q)), t.c.visitors), else_=0)).label("visitors"),
        _selected_sum(t, "pageviews", q).label("pageviews"),
        _selected_sum(t, "events", q).label("events"),
    ]
    for name in LABELS:
        bit = LABEL_BITS[name]
        visitors = func.sum(case((_mask_in(t.c.mask, bit), t.c.visitors), else_=0))
        metrics.append(visitors.label(f"{name}_visitors"))
        metrics.append(func.sum(t.c[f"pageviews_{name}"]).label(f"{name}_pageviews"))
    return _read(RollupHit, q, dimension, found, metrics)


def visit_counts(q: Query, dimension: str | None, found: list[Piece]) -> list[dict[str, Any]]:
    """`raw.visit_counts` columns for the pieces, from `rollup_visits`."""
    t = RollupVisit.__table__
    metrics = [
        func.sum(case((_mask_in(t.c.mask, _bits(q)), t.c.visitors), else_=0)).label("visitors"),
        _selected_sum(t, "sessions", q).label("sessions"),
        *[_selected_sum(t, metric, q).label(metric) for metric in VISIT_SUMS],
    ]
    for name in LABELS:
        bit = LABEL_BITS[name]
        visitors = func.sum(case((_mask_in(t.c.mask, bit), t.c.visitors), else_=0))
        metrics.append(visitors.label(f"{name}_visitors"))
        metrics.append(func.sum(t.c[f"sessions_{name}"]).label(f"{name}_sessions"))
    return _read(RollupVisit, q, dimension, found, metrics)


def not_covered(q: Query, runs: Runs) -> list[Query]:
    """The parts of the range outside `runs`, as queries for the raw tables."""
    parts = []
    cursor = q.start
    for start, end in runs:
        if cursor < start:
            parts.append(q.window(cursor, start))
        cursor = end
    if cursor < q.end:
        parts.append(q.window(cursor, q.end))
    return parts


def open_cut(part: Query, with_journeys: bool = False) -> datetime | None:
    """The cut of a fresh roll-up of a day not over that answers this part of a range
    (from not_covered), or None: the part must start at the day's midnight and end
    at or after the cut, within the day (with `with_journeys`, its journeys built)."""
    found = _open_roll_up(part, with_journeys)
    return found[0] if found is not None else None


def open_settled(part: Query) -> tuple[datetime, datetime] | None:
    """(cut, settled) of a fresh roll-up of a day not over that answers this part of
    a range with its visits (open_cut's rules), or None."""
    found = _open_roll_up(part)
    return found if found is not None and found[1] is not None else None


def _open_roll_up(part: Query, with_journeys: bool = False) -> Any:
    day = _utc_day(part.start)
    if part.start != _midnight(day) or part.end > _midnight(day + timedelta(days=1)):
        return None
    found = db.session.execute(
        select(RollupDay.cut, RollupDay.settled).where(
            RollupDay.site_id == part.site_id,
            RollupDay.day == day,
            RollupDay.built_version == RollupDay.version,
            RollupDay.cut.is_not(None),
            *([RollupDay.journeys.is_(True)] if with_journeys else []),
        )
    ).first()
    return found if found is not None and found[0] <= part.end else None


def open_halves(part: Query, cut: datetime) -> tuple[Piece, Piece] | None:
    """The HEAD and TAIL of the roll-up of a day not over (with `open_cut` `cut`), when
    it has them at the site's midnight: the TAIL holds the hits up to the cut."""
    day = _utc_day(part.start)
    split = db.session.scalar(
        select(RollupDay.split).where(
            RollupDay.site_id == part.site_id, RollupDay.day == day, RollupDay.cut == cut
        )
    )
    if split is None or _aware(split) != split_of(day, part.tz) or _aware(split) >= cut:
        return None
    split = _aware(split)
    start, end = _midnight(day), _midnight(day + timedelta(days=1))
    return Piece(day, HEAD, start, split), Piece(day, TAIL, split, end)


def day_piece(part: Query) -> list[Piece]:
    """The WHOLE piece of the one day `part` starts on (a day not over: its cut)."""
    day = _utc_day(part.start)
    return [Piece(day, WHOLE, _midnight(day), _midnight(day + timedelta(days=1)))]


def _visitor_match(recent: Any) -> Callable[[Any], ColumnElement[bool]] | None:
    """A test "this visitor_id column is one of the ids `recent` selects", or None
    when it selects none.

    On PostgreSQL the ids themselves, not a subquery: planned against a subquery's
    guess of a few rows, the visitor check becomes a nested loop over every pair."""
    if db.session.get_bind().dialect.name == "postgresql":
        ids = list(db.session.scalars(recent))
        if not ids:
            return None
        array = any_(literal(ids, ARRAY(BigInteger)))
        return lambda column: column == array
    if db.session.execute(recent.limit(1)).first() is None:
        return None
    return lambda column: column.in_(recent)


def since_cut(part: Query, cut: datetime) -> list[ColumnElement[bool]] | None:
    """Conditions on events keeping the hits of the visitors seen in [cut, part.end),
    or None when there are none (nothing to swap).

    Their visits are named too, so PostgreSQL reaches the few hits through the
    visits' and the sessions' indexes instead of scanning the whole day. That relies
    on what sessions.assign ensures: a visit holds the hits of one visitor id, so a
    visitor's hits of a day all lie in that visitor's visits seen that day.
    """
    recent = EVENTS.alias("recent")
    tail = (
        select(recent.c.visitor_id)
        .where(
            recent.c.site_id == part.site_id,
            recent.c.ts >= cut,
            recent.c.ts < part.end,
            recent.c.name != "session_end",
        )
        .distinct()
    )
    match = _visitor_match(tail)
    if match is None:
        return None
    their_visits = select(VISITS.c.id).where(
        VISITS.c.site_id == part.site_id,
        match(VISITS.c.visitor_id),
        VISITS.c.last_seen_at >= part.start,
    )
    return [match(EVENTS.c.visitor_id), EVENTS.c.session_id.in_(their_visits)]


def since_settled(part: Query, settled: datetime) -> list[ColumnElement[bool]] | None:
    """Conditions on visits keeping those of the visitors with a hit of the day from
    `settled` on, whose visits the roll-up of a day not over may lack or hold as they
    were (raw.py swaps them); None when there are none.

    Any hit counts, to the end of the day: a visit's last hit is its `last_seen_at`.
    """
    day_end = _midnight(_utc_day(part.start) + timedelta(days=1))
    recent = (
        select(EVENTS.c.visitor_id)
        .where(EVENTS.c.site_id == part.site_id, EVENTS.c.ts >= settled, EVENTS.c.ts < day_end)
        .distinct()
    )
    match = _visitor_match(recent)
    return [match(VISITS.c.visitor_id)] if match is not None else None


def days_of(site_id: int, start: date, end: date) -> list[date]:
    """The days of a site with a fresh roll-up in [start, end) (tests and the CLI)."""
    return list(
        db.session.scalars(
            select(RollupDay.day)
            .where(
                RollupDay.site_id == site_id,
                RollupDay.day >= start,
                RollupDay.day < end,
                and_(RollupDay.built_version.is_not(None)),
                RollupDay.built_version == RollupDay.version,
                RollupDay.cut.is_(None),
            )
            .order_by(RollupDay.day)
        )
    )


def user_periods(q: Query, runs: Runs, grain: str) -> Any:
    """(u, p, n): events per user and day (grain "day") or Monday week of the covered days.

    For sites whose days are UTC days (utc_calendar); retention adds the raw rest.
    """
    t = RollupUser.__table__
    day = DayNumber(t.c.day)
    period = day if grain == "day" else (day + 3) // 7
    where = [t.c.site_id == q.site_id]
    where.append(in_days(t.c.day, runs))
    chosen = selected(t.c.label, q.labels)
    if chosen is not None:
        where.append(chosen)
    return (
        select(t.c.user_id.label("u"), period.label("p"), func.sum(t.c.events).label("n"))
        .where(*where)
        .group_by(t.c.user_id, period)
    )
