"""Journeys: each daily visitor's hits in time order, one character per hit, so a
funnel over whole days is a regular expression over strings instead of a window
scan of every hit (PostgreSQL).

Building (`build`, called by rollups.build_day): every pageview path and event name
a site has seen gets a code in `rollup_items`, and the code a character (`char`).
A visitor's hits of one label on one UTC day (and on a site outside UTC, in each
part of it on either side of the site's midnight: see rollups.py), ordered by time,
make its journey: the characters of its hits, with a space wherever the time moves
on; hits at the same instant sit together. Visitors with the same journey share one
`rollup_journeys` row.

Reading (`level_counts`): funnel step k becomes the character class of the items it
matches, and "step k+1 strictly after step k" becomes `.* .*` (a space, so a later
instant, lies between), so a visitor reaches step k when its journey matches
`C1.* .*C2 ... .* .*Ck`. Daily visitor ids keep a visitor within one day, so with a
conversion window of 24 hours or more the window never binds and the match is the
whole rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, func, not_, select, text
from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics.query import Query
from pulse.extensions import db
from pulse.models import RollupItem, RollupJourney

FIRST_CHAR = 0x100  # past ASCII: no code is a regular-expression character or the space
SURROGATES = (0xD800, 0xE000)  # not characters: codes skip over them
MAX_CODE = 0x10FFFF - FIRST_CHAR - (SURROGATES[1] - SURROGATES[0]) + 1
THEN = ".* .*"

_CHAR_SQL = (
    f"chr(CASE WHEN i.code + {FIRST_CHAR - 1} >= {SURROGATES[0]}"
    f" THEN i.code + {FIRST_CHAR - 1 + SURROGATES[1] - SURROGATES[0]}"
    f" ELSE i.code + {FIRST_CHAR - 1} END)"
)
_DAY_HITS = "e.site_id = :site_id AND e.ts >= :start AND e.ts < :end AND e.name <> 'session_end'"
_ITEM_PATH = "CASE WHEN e.name = 'pageview' THEN e.pathname ELSE '' END"
# Built once from the constants above; the only inputs are bound parameters.
ITEMS_SQL = f"""
    INSERT INTO rollup_items (site_id, code, name, path)
    SELECT :site_id, top.code + row_number() OVER (ORDER BY n.name, n.path), n.name, n.path
    FROM (SELECT DISTINCT e.name, {_ITEM_PATH} AS path FROM events e WHERE {_DAY_HITS}) n
    CROSS JOIN (
        SELECT coalesce(max(code), 0) AS code FROM rollup_items WHERE site_id = :site_id
    ) top
    WHERE NOT EXISTS (
        SELECT 1 FROM rollup_items i
        WHERE i.site_id = :site_id AND i.name = n.name AND i.path = n.path
    )
"""  # noqa: S608
JOURNEYS_SQL = f"""
    INSERT INTO rollup_journeys (site_id, day, part, label, journey, visitors)
    SELECT :site_id, :day, :part, label, journey, count(*)
    FROM (
        SELECT visitor_id, label,
               string_agg(CASE WHEN prev IS NULL OR prev = ts THEN '' ELSE ' ' END || ch, ''
                          ORDER BY ts, code) AS journey
        FROM (
            SELECT e.visitor_id, e.label, e.ts, i.code, {_CHAR_SQL} AS ch,
                   lag(e.ts) OVER (PARTITION BY e.visitor_id, e.label ORDER BY e.ts, i.code)
                       AS prev
            FROM events e
            JOIN rollup_items i
              ON i.site_id = e.site_id AND i.name = e.name AND i.path = {_ITEM_PATH}
            WHERE {_DAY_HITS}
        ) hits
        GROUP BY visitor_id, label
    ) per_visitor
    GROUP BY label, journey
"""  # noqa: S608


def char(code: int) -> str:
    """The character of an item code in journeys (the Python twin of _CHAR_SQL)."""
    point = code + FIRST_CHAR - 1
    return chr(point + SURROGATES[1] - SURROGATES[0] if point >= SURROGATES[0] else point)


def build(
    site_id: int, day: date, bounds: dict[str, Any], spans: list[tuple[int, datetime, datetime]]
) -> bool:
    """Write the journeys of a site's day (PostgreSQL, in the caller's transaction):
    one set per (part, start, end) of `spans` (rollups.py: the whole day, and on a
    site outside UTC its parts on either side of the site's midnight).

    False, with nothing written, when the site has more items than characters.
    """
    db.session.execute(
        RollupJourney.__table__.delete().where(
            RollupJourney.site_id == site_id, RollupJourney.day == day
        )
    )
    added = db.session.execute(text(ITEMS_SQL), bounds).rowcount
    if added:
        # Fresh statistics: planned on a new or grown table it has none of, the journeys
        # join runs as a nested loop over every hit (20 s a day instead of 2).
        db.session.execute(text("ANALYZE rollup_items"))
    top = db.session.scalar(select(func.max(RollupItem.code)).where(RollupItem.site_id == site_id))
    if top is not None and top > MAX_CODE:
        return False
    for part, start, end in spans:
        db.session.execute(text(JOURNEYS_SQL), {**bounds, "part": part, "start": start, "end": end})
    return True


def char_class(codes: Sequence[int]) -> str:
    """A regular-expression class of these item codes (sorted), runs as ranges."""
    parts = []
    start = previous = None
    for code in [*codes, None]:
        if code is not None and previous is not None and code == previous + 1:
            previous = code
            continue
        if start is not None:
            first, last = char(start), char(previous)
            parts.append(first if start == previous else f"{first}-{last}")
        start = previous = code
    return f"[{''.join(parts)}]"


def reaches(journey: ColumnElement[str], steps: list[Sequence[int]]) -> ColumnElement[bool]:
    """Whether a journey passes through these steps (item codes of each), in order.

    Steps of one item each are a LIKE (`%a% %b%`: no `%`, `_` or backslash is an item
    character), two to three times cheaper than the regular expression the rest need.
    """
    if all(len(codes) == 1 for codes in steps):
        return journey.like("%" + "% %".join(char(codes[0]) for codes in steps) + "%")
    return journey.regexp_match(THEN.join(char_class(codes) for codes in steps))


def level_counts(
    q: Query, pieces: ColumnElement[bool], steps: list[ColumnElement[bool]]
) -> dict[int, int]:
    """{level: visitors} over the journeys meeting `pieces` (a condition on the days
    and parts to read) for visitors past step 1, where step k is the condition
    `steps[k-1]` on rollup_items. The caller makes sure `q.labels` names one label,
    that the funnel is one journeys answer and that no two parts of a day are read
    together (funnel.py)."""
    found = []
    for condition in steps:
        codes = db.session.scalars(
            select(RollupItem.code)
            .where(RollupItem.site_id == q.site_id, condition)
            .order_by(RollupItem.code)
        ).all()
        if not codes:
            break  # no hit can be this step: nobody gets past the one before
        found.append(codes)
    if not found:
        return {}
    t = RollupJourney.__table__
    tests = [reaches(t.c.journey, found[:k]) for k in range(1, len(found) + 1)]
    # The furthest step, testing the cheap early patterns first.
    level = case(*[(not_(test), k) for k, test in enumerate(tests)], else_=len(tests))
    levels = (
        select(level.label("level"), t.c.visitors)
        .where(t.c.site_id == q.site_id, pieces, t.c.label == q.labels[0])
        .subquery()
    )
    # PostgreSQL costs a regular expression like an equality, so it would scan in one
    # process; matching is the work here, and two workers share it.
    db.session.execute(text("SET LOCAL parallel_setup_cost = 0"))
    db.session.execute(text("SET LOCAL parallel_tuple_cost = 0"))
    # Level 0 is dropped here: a WHERE on the level would match every pattern again.
    statement = select(levels.c.level, func.sum(levels.c.visitors)).group_by(levels.c.level)
    rows = db.session.execute(statement).all()
    return {int(level): int(n) for level, n in rows if level > 0}
