"""Funnels: how many units went through ordered steps within a conversion window.

A step is a pageview of a path (exact, or with `*` wildcards: `/blog/*`) or a
custom event by name (`page_view` / `pageview` as an event means any pageview),
optionally with property values that must all match.

The unit is what follows the funnel (`unit`):
- `visitor` (default, as in Plausible): the daily visitor id. Ids are a hash of
  a daily salt, so a visitor's funnel cannot cross UTC midnight whatever the window;
- `session`: one visit;
- `user`: the `user_id` events carry (identify / server-side senders); the only
  unit that follows a person across days, as PostHog users expect. Events without
  a user_id are left out.

Rules: step k+1 must happen strictly after the step k used (same timestamp does not
count), and every step within the window of the first one (to the microsecond). A
unit reaches step k when some choice of events satisfies that; it counts at every
step up to the furthest it reached (so counts never grow from one step to the next).
Only events in the Query's range that pass its filters and classification count.

How the SQL finds the furthest step in one sort of the candidate events (the hits
matching any step): for each step-k event, the latest start of a valid chain ending
there is the running maximum, over the unit's strictly earlier events, of step
k-1's latest starts (step 1's start is its own time). The latest start is always the
best for the window, so the event completes step k exactly when its time minus that
start fits the window. Each step adds one window aggregate over the same ordering
(partition by unit, order by time), which PostgreSQL evaluates without sorting again
and incrementally (the frame starts at the partition's first row).

Breakdown: a unit counts under the dimension value of its first step-1 event (the
smallest value when several share that instant; session dimensions come from the
event's visit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Boolean, String, and_, bindparam, case, func, or_, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics import journeys, rollups
from pulse.analytics.breakdowns import resolve
from pulse.analytics.dimensions import EVENTS, VISITS, Dimension
from pulse.analytics.expressions import PropText
from pulse.analytics.query import Query
from pulse.analytics.sql import events_where, selected
from pulse.errors import ValidationFailed
from pulse.extensions import db
from pulse.models import RollupItem, RollupJourney

MIN_STEPS, MAX_STEPS = 2, 10
DEFAULT_WINDOW_HOURS = 24.0
MAX_WINDOW_HOURS = 24.0 * 90
UNITS = ("visitor", "session", "user")
PAGEVIEW_NAMES = ("pageview", "page_view")
MAX_STEP_TEXT = 1024
DAY_MICROS = 86_400_000_000
WORK_MEM = "64MB"


@dataclass(frozen=True)
class Step:
    """One funnel step: a page path pattern or an event name, and property matches."""

    kind: str  # "page" or "event"
    value: str
    props: tuple[tuple[str, str], ...] = ()
    label: str | None = None

    @property
    def wildcard(self) -> bool:
        return self.kind == "page" and "*" in self.value

    def describe(self) -> dict[str, Any]:
        default = self.value if self.kind == "event" else f"Visit {self.value}"
        return {
            "name": self.label or default,
            "type": self.kind,
            "match": self.value,
            "properties": dict(self.props),
        }


@dataclass(frozen=True)
class FunnelSpec:
    """What a funnel request asks, validated."""

    steps: tuple[Step, ...]
    window_hours: float = DEFAULT_WINDOW_HOURS
    unit: str = "visitor"
    breakdown: Dimension | None = field(default=None)

    @property
    def window_micros(self) -> int:
        return round(self.window_hours * 3_600_000_000)


def _fail(name: str, message: str) -> ValidationFailed:
    return ValidationFailed("Invalid funnel.", errors={name: [message]})


def _check_text(text: str, name: str) -> str:
    if not text or len(text) > MAX_STEP_TEXT or any(ord(c) < 32 for c in text):
        raise _fail(name, f"1-{MAX_STEP_TEXT} characters, no control characters.")
    return text


def parse_step(raw: Any, index: int = 0) -> Step:
    """A step from a string (`/path`, `/blog/*`, `signup`, `page:/x`, `event:x;plan=pro`)
    or an object (`{"page": ...}` or `{"event": ...}`, optional `properties`, `label`)."""
    name = f"steps.{index}"
    if isinstance(raw, str):
        text, _, rest = raw.partition(";")
        props: dict[str, Any] = {}
        for pair in filter(None, rest.split(";")):
            key, sep, value = pair.partition("=")
            if not sep:
                raise _fail(name, "Property matches are written ;key=value.")
            props[key] = value
        if text.startswith("page:"):
            spec: dict[str, Any] = {"page": text[5:]}
        elif text.startswith("event:"):
            spec = {"event": text[6:]}
        elif text.startswith("/"):
            spec = {"page": text}
        else:
            spec = {"event": text}
        spec["properties"] = props
        raw = spec
    if not isinstance(raw, dict):
        raise _fail(name, "A step is a string or an object with page or event.")
    page = raw.get("page", raw.get("path"))
    event = raw.get("event", raw.get("name"))
    if (page is None) == (event is None):
        raise _fail(name, "Give exactly one of page or event.")
    props_raw = raw.get("properties", raw.get("props")) or {}
    if not isinstance(props_raw, dict) or len(props_raw) > 10:
        raise _fail(name, "properties: an object of at most 10 key/value pairs.")
    pairs = []
    for key, value in sorted(props_raw.items()):
        if not isinstance(key, str) or not key or len(key) > 64 or '"' in key:
            raise _fail(name, "Property names are 1-64 characters, without quotes.")
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int | float):
            raise _fail(name, "Property values are strings, numbers or booleans.")
        pairs.append((key, _check_text(str(value), name)))
    label = raw.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > 255):
        raise _fail(name, "label: a string of at most 255 characters.")
    if page is not None:
        if not isinstance(page, str) or not page.startswith("/"):
            raise _fail(name, "A page step is a path starting with /.")
        return Step("page", _check_text(page, name), tuple(pairs), label)
    if not isinstance(event, str):
        raise _fail(name, "An event step names the event.")
    event = _check_text(event.strip(), name)
    if event in PAGEVIEW_NAMES:
        event = "pageview"
    return Step("event", event, tuple(pairs), label)


def make_spec(
    steps: list[Any],
    window_hours: float | None = None,
    unit: str | None = None,
    breakdown: str | None = None,
) -> FunnelSpec:
    """A validated FunnelSpec; ValidationFailed (422) names the bad field."""
    if not isinstance(steps, list) or not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise _fail("steps", f"Give {MIN_STEPS} to {MAX_STEPS} steps, in order.")
    parsed = tuple(parse_step(s, i) for i, s in enumerate(steps))
    hours = DEFAULT_WINDOW_HOURS if window_hours is None else window_hours
    if isinstance(hours, bool) or not isinstance(hours, int | float):
        raise _fail("conversion_window_hours", "A number of hours.")
    if not (1 / 60) <= hours <= MAX_WINDOW_HOURS:
        raise _fail(
            "conversion_window_hours", f"From 1 minute (0.0167) to {MAX_WINDOW_HOURS:g} hours."
        )
    unit = unit or "visitor"
    if unit not in UNITS:
        raise _fail("unit", f"Use one of: {', '.join(UNITS)}.")
    dim = resolve(breakdown, "breakdown") if breakdown else None
    return FunnelSpec(parsed, float(hours), unit, dim)


# SQL ---------------------------------------------------------------------------------


class PathPattern(ColumnElement[bool]):
    """A path matching a pattern where `*` stands for any characters (case-sensitive)."""

    inherit_cache = False

    def __init__(self, column: ColumnElement[Any], pattern: str) -> None:
        self.column = column
        self.pattern = pattern


@compiles(PathPattern)
def _pattern_default(element: PathPattern, compiler: Any, **kw: Any) -> str:
    escaped = element.pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    value = compiler.process(bindparam(None, escaped.replace("*", "%"), String()), **kw)
    return f"({compiler.process(element.column, **kw)} LIKE {value} ESCAPE '\\')"


@compiles(PathPattern, "sqlite")
def _pattern_sqlite(element: PathPattern, compiler: Any, **kw: Any) -> str:
    # GLOB is case-sensitive (LIKE is not on SQLite); `*` is its own wildcard.
    escaped = "".join(f"[{c}]" if c in "?[]" else c for c in element.pattern)
    value = compiler.process(bindparam(None, escaped, String()), **kw)
    return f"({compiler.process(element.column, **kw)} GLOB {value})"


class EpochMicros(ColumnElement[int]):
    """Microseconds since the epoch of a UTC timestamp, exactly (SQLite's date functions
    round to milliseconds, so its text is cut into whole seconds and the fraction)."""

    type = BigInteger()
    inherit_cache = False

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column


@compiles(EpochMicros)
def _micros_default(element: EpochMicros, compiler: Any, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.column, **kw)}) * 1000000 AS BIGINT)"


@compiles(EpochMicros, "sqlite")
def _micros_sqlite(element: EpochMicros, compiler: Any, **kw: Any) -> str:
    ts = compiler.process(element.column, **kw)
    return (
        f"(CAST(strftime('%s', substr({ts}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({ts}, 21, 6) AS INTEGER))"
    )


class WithinWindow(ColumnElement[bool]):
    """`later - earlier <= micros` for two timestamps: interval arithmetic on
    PostgreSQL, exact epoch microseconds elsewhere."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, later: ColumnElement[Any], earlier: ColumnElement[Any], micros: int):
        self.later, self.earlier, self.micros = later, earlier, micros


@compiles(WithinWindow)
def _within_default(element: WithinWindow, compiler: Any, **kw: Any) -> str:
    later = compiler.process(EpochMicros(element.later), **kw)
    earlier = compiler.process(EpochMicros(element.earlier), **kw)
    micros = compiler.process(bindparam(None, element.micros, BigInteger()), **kw)
    return f"(({later}) - ({earlier}) <= {micros})"


@compiles(WithinWindow, "postgresql")
def _within_postgresql(element: WithinWindow, compiler: Any, **kw: Any) -> str:
    later = compiler.process(element.later, **kw)
    earlier = compiler.process(element.earlier, **kw)
    micros = compiler.process(bindparam(None, element.micros, BigInteger()), **kw)
    return f"(({later}) - ({earlier}) <= {micros} * INTERVAL '1 microsecond')"


class EarlierMax(ColumnElement[Any]):
    """max(value) over the unit's events strictly earlier than the current one.

    PostgreSQL: a RANGE frame ending 1 microsecond before the row (timestamps have
    microseconds), which it aggregates incrementally. SQLite: the frame up to the
    row, minus the row and its peers (EXCLUDE GROUP)."""

    inherit_cache = False

    def __init__(self, value: Any, unit: Any, ts: Any) -> None:
        self.value, self.unit, self.ts = value, unit, ts
        self.type = value.type


def _over(element: EarlierMax, compiler: Any, frame: str, **kw: Any) -> str:
    value = compiler.process(element.value, **kw)
    unit = compiler.process(element.unit, **kw)
    ts = compiler.process(element.ts, **kw)
    return f"max({value}) OVER (PARTITION BY {unit} ORDER BY {ts} {frame})"


@compiles(EarlierMax)
def _earlier_default(element: EarlierMax, compiler: Any, **kw: Any) -> str:
    frame = "RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP"
    return _over(element, compiler, frame, **kw)


@compiles(EarlierMax, "postgresql")
def _earlier_postgresql(element: EarlierMax, compiler: Any, **kw: Any) -> str:
    frame = "RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL '1 microsecond' PRECEDING"
    return _over(element, compiler, frame, **kw)


def step_condition(step: Step) -> ColumnElement[bool]:
    """The WHERE condition of events matching a step."""
    if step.kind == "page":
        parts = [EVENTS.c.name == "pageview"]
        if step.wildcard:
            parts.append(PathPattern(EVENTS.c.pathname, step.value))
        else:
            parts.append(EVENTS.c.pathname == step.value)
    else:
        parts = [EVENTS.c.name == step.value]
    parts += [PropText(EVENTS.c.props, key) == value for key, value in step.props]
    return and_(*parts)


def _unit_column(unit: str) -> tuple[ColumnElement[Any], list[ColumnElement[bool]]]:
    if unit == "session":
        return EVENTS.c.session_id, [EVENTS.c.session_id != ""]
    if unit == "user":
        return EVENTS.c.user_id, [EVENTS.c.user_id.is_not(None), EVENTS.c.user_id != ""]
    return EVENTS.c.visitor_id, []


def _per_unit(q: Query, spec: FunnelSpec, also: list[Any] | None = None) -> Any:
    """A subquery: one row per unit that reached step 1, its level and breakdown value."""
    unit, unit_conditions = _unit_column(spec.unit)
    matches = [step_condition(s) for s in spec.steps]
    columns: list[Any] = [
        unit.label("u"),
        EVENTS.c.ts.label("ts"),
        case((matches[0], EVENTS.c.ts)).label("f1"),
        *[case((m, 1), else_=0).label(f"m{k}") for k, m in enumerate(matches[1:], start=2)],
    ]
    source: Any = EVENTS
    dim = spec.breakdown
    if dim is not None:
        if dim.session_scoped:
            source = EVENTS.outerjoin(
                VISITS, and_(VISITS.c.id == EVENTS.c.session_id, VISITS.c.site_id == q.site_id)
            )
            columns.append(dim.on_visits().label("b"))
        else:
            columns.append(dim.on_events().label("b"))
    where = [*events_where(q), *unit_conditions, or_(*matches), *(also or [])]
    chosen = selected(EVENTS.c.label, q.labels)
    if chosen is not None:
        where.append(chosen)
    level = select(*columns).select_from(source).where(*where).subquery("l1")

    def done(k: int, level: Any) -> Any:
        """Step k's latest start on this row (None when the row is not step k)."""
        if k == 1:
            return level.c.f1
        return case((level.c[f"m{k}"] == 1, level.c[f"p{k}"]))

    for k in range(2, len(spec.steps) + 1):
        latest = EarlierMax(done(k - 1, level), level.c.u, level.c.ts)
        level = select(*level.c, latest.label(f"p{k}")).subquery(f"l{k}")
    window = spec.window_micros
    reached = case(
        *[
            (done(k, level).is_not(None) & WithinWindow(level.c.ts, done(k, level), window), k)
            for k in range(len(spec.steps), 1, -1)
        ],
        (level.c.f1.is_not(None), 1),
        else_=0,
    )
    per_unit = [level.c.u, func.max(reached).label("level")]
    if dim is not None:
        # The first step-1 instant: a step-1 row with no step-1 row before it.
        first = level.c.f1.is_not(None) & level.c.p2.is_(None)
        per_unit.append(func.min(case((first, level.c.b))).label("b"))
    return select(*per_unit).group_by(level.c.u).subquery("units")


def roomy_sorts() -> None:
    """PostgreSQL: let this transaction's sorts and hash tables use WORK_MEM, so the one
    big sort (or hash) of a funnel or retention query stays in memory (the 4 MB
    default spills a million candidate events to disk)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))


def journeys_answer(q: Query, spec: FunnelSpec) -> bool:
    """Whether journeys (journeys.py) can answer the whole days of this funnel: daily
    visitors of one label, a window no visitor id outlives, steps without property
    matches, no filters or breakdown, on PostgreSQL."""
    return (
        spec.unit == "visitor"
        and spec.window_micros >= DAY_MICROS
        and spec.breakdown is None
        and not any(step.props for step in spec.steps)
        and not q.filters
        and q.labels is not None
        and len(q.labels) == 1
        and db.session.get_bind().dialect.name == "postgresql"
    )


def item_condition(step: Step) -> ColumnElement[bool]:
    """The condition on rollup_items of the items a step matches."""
    items = RollupItem.__table__.c
    if step.kind == "page":
        path = PathPattern(items.path, step.value) if step.wildcard else items.path == step.value
        return and_(items.name == "pageview", path)
    if step.value == "pageview":
        return items.name == "pageview"
    return and_(items.name == step.value, items.path == "")


def level_counts(q: Query, spec: FunnelSpec) -> dict[Any, dict[int, int]]:
    """{breakdown value (None without a breakdown): {level: units}} for units past step 1.

    The roll-up pieces with journeys (whole UTC days, or a part of one at the range's
    edge on a site outside UTC) are read from them, the current day from its journeys
    up to the cut, the rest of the range from raw hits; units never span two of
    these (visitor ids are daily, and no day is read in two), so their counts add up.
    """
    if not journeys_answer(q, spec):
        return _raw_level_counts(q, spec)
    found = rollups.pieces(q, with_journeys=True)
    total: dict[int, int] = {}

    def add(counts: dict[Any, dict[int, int]], sign: int = 1) -> None:
        for level, n in counts.get(None, {}).items():
            total[level] = total.get(level, 0) + sign * n

    journey_pieces = list(found)
    for part in rollups.not_covered(q, rollups.spans(found)):
        cut = rollups.open_cut(part, with_journeys=True)
        if cut is None:
            add(_raw_level_counts(part, spec))
            continue
        # The current day: its journeys up to the cut, with the visitors seen since
        # then swapped for their whole day so far (rollups.py, "The current day").
        journey_pieces += rollups.day_piece(part)
        tail = rollups.since_cut(part, cut)
        if tail is not None:
            add(_raw_level_counts(part, spec, also=tail))
            add(_raw_level_counts(part.window(part.start, cut), spec, also=tail), -1)
    if journey_pieces:
        # After the raw parts: journeys change this transaction's parallel costs.
        conditions = [item_condition(step) for step in spec.steps]
        where = rollups.in_pieces(RollupJourney.__table__.c, journey_pieces)
        add({None: journeys.level_counts(q, where, conditions)})
    total = {level: n for level, n in total.items() if n}
    return {None: total} if total else {}


def _raw_level_counts(
    q: Query, spec: FunnelSpec, also: list[Any] | None = None
) -> dict[Any, dict[int, int]]:
    """level_counts from the raw events (the hits meeting `also` too), by window
    functions (see the module notes)."""
    roomy_sorts()
    units = _per_unit(q, spec, also)
    keys = [units.c.b] if spec.breakdown is not None else []
    statement = (
        select(*keys, units.c.level, func.count().label("n"))
        .where(units.c.level > 0)
        .group_by(*keys, units.c.level)
    )
    found: dict[Any, dict[int, int]] = {}
    for row in db.session.execute(statement).mappings():
        value = row["b"] if spec.breakdown is not None else None
        found.setdefault(value, {})[int(row["level"])] = int(row["n"])
    return found


# Shaping -----------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def step_rows(spec: FunnelSpec, levels: dict[int, int]) -> list[dict[str, Any]]:
    """Per step: count, conversion from the previous and the first step, drop-off."""
    reached = range(1, len(spec.steps) + 1)
    counts = [sum(n for lvl, n in levels.items() if lvl >= k) for k in reached]
    rows = []
    for index, (step, count) in enumerate(zip(spec.steps, counts, strict=True)):
        before = counts[index - 1] if index else count
        rows.append(
            {
                "step": index + 1,
                **step.describe(),
                "count": count,
                "conversion_rate": _ratio(count, before),
                "conversion_rate_from_start": _ratio(count, counts[0]),
                "drop_off": before - count,
                "drop_off_rate": _ratio(before - count, before),
            }
        )
    return rows


def _summary(spec: FunnelSpec, levels: dict[int, int]) -> dict[str, Any]:
    steps = step_rows(spec, levels)
    first, last = steps[0]["count"], steps[-1]["count"]
    return {
        "entered": first,
        "converted": last,
        "overall_conversion_rate": _ratio(last, first),
        "steps": steps,
    }


def _order(item: tuple[Any, dict[int, int]]) -> tuple[int, int, str]:
    value, levels = item
    return (-sum(levels.values()), value is None, "" if value is None else str(value))


def funnel(q: Query, spec: FunnelSpec) -> dict[str, Any]:
    """Seed 002's funnel: `steps[]` with per-step rates and `overall_conversion_rate` (0-1)."""
    found = level_counts(q, spec)
    total: dict[int, int] = {}
    for levels in found.values():
        for lvl, n in levels.items():
            total[lvl] = total.get(lvl, 0) + n
    result: dict[str, Any] = {
        "unit": spec.unit,
        "conversion_window_hours": spec.window_hours,
        **_summary(spec, total),
        "breakdown": None,
    }
    if spec.breakdown is not None:
        ranked = sorted(found.items(), key=_order)[: q.limit]
        result["breakdown"] = {
            "dimension": spec.breakdown.name,
            "rows": [{"value": value, **_summary(spec, levels)} for value, levels in ranked],
        }
    return result
