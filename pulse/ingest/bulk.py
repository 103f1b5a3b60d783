"""The PostgreSQL path of `store.write`: COPY in, visits as plain records, no ORM.

Why: the ORM path costs about 40 us of Python per event (statement compilation, an
IN list with thousands of binds, an ORM flush of the visits); the drainer has to
store 30,000 events/s on two cores next to gunicorn. Here a batch costs a handful of
statements whatever its size, and the Python work is orjson-speed bookkeeping.

Same semantics as the ORM path (tests/integration/test_ingest_bulk_store.py runs
both on the same input and compares every column):
- an event id the site already has, or a repeat within the batch, is skipped before
  visits are counted, so a duplicate never counts into a visit;
- `sessions.assign` is the same code on plain records (`BulkVisits`);
- JSON columns are serialised with json.dumps, as SQLAlchemy does, and timestamps
  are stored and read back in UTC, as UTCDateTime does.
All of it runs in the caller's transaction on db.session's connection; nothing commits.

Two writers of the same visitors (several drainers, or direct writes while Redis is
down) take turns: each holds its batch's visitors (advisory locks) until it commits, so
the second reads the visits as the first left them instead of overwriting its counts.
Two writers racing on the same event id or explicit session id: the COPY runs under a
savepoint; a unique violation (the other writer committed that row first) rolls back
to it and the batch is recomputed without the rows now stored, so the result is that
of ON CONFLICT DO NOTHING, with correct visit counters, and the batch is not lost.
COPY straight into `events` took the server about a third less time than COPY into a
temporary table plus INSERT ... SELECT ... ON CONFLICT (5,000-row batches, measured on
the 2-CPU development machine: 10.5-12.6 against 13.6-21 us/event of wall time).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import orjson
from psycopg import Cursor, errors
from psycopg.types.json import set_json_loads
from sqlalchemy.dialects import postgresql

from pulse.extensions import db
from pulse.ingest import sessions
from pulse.models import Event, Visit

EVENT_COLUMNS = tuple(c.name for c in Event.__table__.columns if c.name != "id")
VISIT_COLUMNS = tuple(c.name for c in Visit.__table__.columns)
# What _absorb and _end may change; the other columns are set once when a visit starts.
VISIT_CHANGES = (
    "started_at",
    "last_seen_at",
    "ended_at",
    "entry_path",
    "exit_path",
    "pageviews",
    "events",
    "duration_s",
    "is_bounce",
    "engagement_score",
    "label",
    "agent_name",
    "agent_category",
    "confidence",
    "tier",
    "reasons",
    "detection",
    "user_agent",
    "behaviour",
)
JSON_COLUMNS = frozenset({"props", "reasons", "detection", "behaviour"})
TIMESTAMPS = ("started_at", "last_seen_at", "ended_at")
CHANGES_TABLE = "pulse_bulk_visit_changes"
ATTEMPTS = 5  # a batch that loses this many races in a row fails (the drainer retries it)
_SAVEPOINT = "pulse_bulk_write"


def _copy_type(column: Any) -> str:
    """The PostgreSQL type name psycopg dumps a column's values as, in binary COPY."""
    name = column.type.compile(dialect=postgresql.dialect()).lower()
    if "timestamp" in name:
        return "timestamptz"
    if name.startswith(("varchar", "character varying", "text")):
        return "text"
    return {
        "integer": "int4",
        "bigint": "int8",
        "smallint": "int2",
        "float": "float8",
        "double precision": "float8",
        "boolean": "bool",
        # JSON text goes in as is (a "json" dumper would encode the string once more).
        "json": "text",
    }[name]


EVENT_TYPES = [_copy_type(Event.__table__.c[name]) for name in EVENT_COLUMNS]
VISIT_TYPES = [_copy_type(Visit.__table__.c[name]) for name in VISIT_COLUMNS]
CHANGE_COLUMNS = ("id", *VISIT_CHANGES)  # a changed visit: its id and what may change
CHANGE_TYPES = [_copy_type(Visit.__table__.c[name]) for name in CHANGE_COLUMNS]
_EVENT_PLAIN = itemgetter(*(c for c in EVENT_COLUMNS if c not in JSON_COLUMNS))
_EVENT_ORDER = [c for c in EVENT_COLUMNS if c not in JSON_COLUMNS] + [
    c for c in EVENT_COLUMNS if c in JSON_COLUMNS
]
_EVENT_COPY = f"COPY events ({', '.join(_EVENT_ORDER)}) FROM STDIN (FORMAT BINARY)"
_EVENT_COPY_TYPES = [EVENT_TYPES[EVENT_COLUMNS.index(c)] for c in _EVENT_ORDER]
_VISIT_COPY = f"COPY visits ({', '.join(VISIT_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_CHANGES_COPY = f"COPY {CHANGES_TABLE} ({', '.join(CHANGE_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
# Statements built once from the models' column names (no input goes into them).
_CREATE_CHANGES = (
    f"DO $$ BEGIN IF to_regclass('pg_temp.{CHANGES_TABLE}') IS NULL THEN "  # noqa: S608
    f"CREATE TEMP TABLE {CHANGES_TABLE} ON COMMIT DELETE ROWS "
    f"AS SELECT id, {', '.join(VISIT_CHANGES)} FROM visits WITH NO DATA; "
    "END IF; END $$"
)
_APPLY_CHANGES = (
    f"WITH c AS (DELETE FROM {CHANGES_TABLE} RETURNING *) "  # noqa: S608
    f"UPDATE visits AS v SET {', '.join(f'{n} = c.{n}' for n in VISIT_CHANGES)} "
    "FROM c WHERE v.id = c.id"
)
# Lists go in as one JSON text each: psycopg dumps a Python list element by element,
# which cost more than the rest of the query; orjson and PostgreSQL do it in C.
_PAIRS = "ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json))"
_STORED = (
    "SELECT e.site_id, e.event_uid "  # noqa: S608
    f"FROM {_PAIRS} AS u(site_id, uid) "
    "JOIN events AS e ON e.site_id = u.site_id::int4 AND e.event_uid = u.uid"
)
# Each writer locks the visitors of its batch, in one order, before it reads their visits:
# two writers would otherwise both read a visit, both add their events to what they
# read, and the later UPDATE would drop the earlier one's counts.
_LOCK_VISITORS = (
    "SELECT pg_advisory_xact_lock(k) "
    "FROM (SELECT json_array_elements_text(%s::json)::int8 AS k) AS keys"
)
_BY_IDS = (
    f"SELECT {', '.join(VISIT_COLUMNS)} FROM visits "  # noqa: S608
    "WHERE id IN (SELECT json_array_elements_text(%s::json))"
)
_OPEN = (
    f"SELECT {', '.join(f'v.{c}' for c in VISIT_COLUMNS)} "  # noqa: S608
    f"FROM {_PAIRS} AS u(site_id, visitor_id) "
    "JOIN json_to_recordset(%s::json) AS s(site_id int4, since timestamptz) "
    "ON s.site_id = u.site_id::int4 "
    "JOIN visits AS v ON v.site_id = s.site_id AND v.visitor_id = u.visitor_id::int8 "
    "AND v.last_seen_at >= s.since ORDER BY v.last_seen_at"
)


def _json_list(values: list[Any]) -> str:
    return orjson.dumps(values).decode()


def _json_encoder() -> Callable[[Any], str]:
    """json.dumps with its default settings, the C encoder built once instead of on
    every call (half the cost on a small dict); json.dumps where there is no C encoder."""
    make = json.encoder.c_make_encoder
    if make is None:
        return json.dumps
    default = json.JSONEncoder().default  # raises TypeError, as json.dumps would
    # markers, default, encoder, indent, key and item separators, sort_keys, skipkeys,
    # allow_nan: json.dumps' own (no circularity check: the values come from JSON).
    encode = make(None, default, json.encoder.encode_basestring_ascii, None, ": ", ", ",
                  False, False, True)  # fmt: skip
    return lambda value: "".join(encode(value, 0))


_json_text = _json_encoder()


def _json(value: Any) -> str:
    """JSON text exactly as SQLAlchemy's JSON type writes it (json.dumps)."""
    if not value and isinstance(value, dict):
        return "{}"
    return _json_text(value)


def _record_loader(columns: tuple[str, ...]) -> Callable[[Any, tuple[Any, ...]], None]:
    """`record.a, record.b, ... = row`, compiled once from the model's column names: a
    visit is loaded for nearly every single-event request, and this runs several times
    faster than setattr in a loop (dataclasses and namedtuple build code the same way)."""
    targets = ", ".join(f"record.{name}" for name in columns)
    namespace: dict[str, Any] = {}
    exec(f"def load(record, row):\n    ({targets},) = row\n", namespace)  # noqa: S102
    return namespace["load"]


_load_record = _record_loader(VISIT_COLUMNS)
_TIMESTAMP_INDEXES = tuple(VISIT_COLUMNS.index(name) for name in TIMESTAMPS)


class VisitRecord:
    """A visit row as a plain object: what `sessions` reads and changes, nothing more."""

    __slots__ = VISIT_COLUMNS

    def __init__(self, fields: dict[str, Any]) -> None:
        for name in VISIT_COLUMNS:
            setattr(self, name, fields.get(name))

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> VisitRecord:
        values = list(row)
        for i in _TIMESTAMP_INDEXES:
            value = values[i]
            if value is not None and value.tzinfo is not UTC:
                values[i] = value.astimezone(UTC)
        record = cls.__new__(cls)
        _load_record(record, values)  # ValueError if the row's length is not the model's
        return record

    def values(self, reader: Reader) -> tuple[Any, ...]:
        """The record's values in the reader's columns, JSON columns as JSON text."""
        values = list(reader.read(self))
        for i in reader.json_indexes:
            values[i] = _json(values[i])
        return tuple(values)


class Reader(NamedTuple):
    """How to read some columns off a VisitRecord: built once per column list."""

    read: Callable[[Any], tuple[Any, ...]]  # an attrgetter of two or more: a tuple
    json_indexes: tuple[int, ...]  # the positions of the JSON columns among them

    @classmethod
    def of(cls, columns: tuple[str, ...]) -> Reader:
        return cls(
            attrgetter(*columns), tuple(i for i, n in enumerate(columns) if n in JSON_COLUMNS)
        )


_NEW_VISIT = Reader.of(VISIT_COLUMNS)
_CHANGED_VISIT = Reader.of(CHANGE_COLUMNS)


class BulkVisits:
    """`sessions.Visits` over plain records: two queries up front, one identity map."""

    def __init__(self, cursor: Cursor, rows: list[dict[str, Any]]) -> None:
        self.records: dict[str, VisitRecord] = {}
        self.stored: set[str] = set()  # ids that are in the table: UPDATE, not INSERT
        self.open: dict[int, dict[int, VisitRecord]] = defaultdict(dict)
        self._load(cursor, rows)

    def _keep(self, row: tuple[Any, ...]) -> VisitRecord:
        record = self.records.get(row[0])
        if record is None:
            record = self.records[row[0]] = VisitRecord.from_row(row)
            self.stored.add(record.id)
        return record

    def _load(self, cursor: Cursor, rows: list[dict[str, Any]]) -> None:
        """What `assign` will ask for, per site, fetched for all sites at once."""
        explicit: set[str] = set()
        since: dict[int, datetime] = {}
        inferred: dict[int, set[int]] = defaultdict(set)
        for row in rows:
            site_id, ts = row["site_id"], row["ts"]
            if site_id not in since or ts < since[site_id]:
                since[site_id] = ts
            if row["session_id"]:
                explicit.add(row["session_id"])
            else:
                inferred[site_id].add(row["visitor_id"])
        set_json_loads(orjson.loads, cursor)  # the same values as json.loads, faster
        if explicit:
            cursor.execute(_BY_IDS, (_json_list(list(explicit)),))
            for row in cursor.fetchall():
                self._keep(row)
        if inferred:
            sites = [s for s, visitors in inferred.items() for _ in visitors]
            visitors = [v for each in inferred.values() for v in each]
            cutoffs = [{"site_id": s, "since": since[s] - sessions.TIMEOUT} for s in inferred]
            cursor.execute(_OPEN, (_json_list(sites), _json_list(visitors), _json_list(cutoffs)))
            for row in cursor.fetchall():
                record = self._keep(row)
                self.open[record.site_id][record.visitor_id] = record  # latest last wins

    def by_ids(self, ids: set[str]) -> dict[str, VisitRecord]:
        return {i: self.records[i] for i in ids if i in self.records}

    def open_at(self, site_id: int, visitor_ids: set[int], since: datetime) -> dict[int, Any]:
        found = self.open.get(site_id, {})
        return {v: found[v] for v in visitor_ids if v in found}

    def new(self, fields: dict[str, Any]) -> VisitRecord:
        record = self.records[fields["id"]] = VisitRecord(fields)
        return record


def _first_of_each(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (site, event id), the first; grouped by site like the ORM path."""
    by_site: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for row in rows:
        ts = row["ts"]
        if ts.tzinfo is None:  # UTCDateTime reads a naive timestamp as UTC
            row["ts"] = ts.replace(tzinfo=UTC)
        by_site[row["site_id"]].setdefault(row["event_uid"], row)
    return [row for site_rows in by_site.values() for row in site_rows.values()]


def _stored(cursor: Cursor, rows: list[dict[str, Any]]) -> set[tuple[int, str]]:
    """The (site, event id) pairs of these rows that are already in the table."""
    sites, uids = [r["site_id"] for r in rows], [r["event_uid"] for r in rows]
    cursor.execute(_STORED, (_json_list(sites), _json_list(uids)))
    return set(cursor.fetchall())


_MIX = 0x9E3779B97F4A7C15  # spreads site ids over the 64 bits (Fibonacci hashing)


def _lock_visitors(cursor: Cursor, rows: list[dict[str, Any]]) -> None:
    """Hold each (site, visitor) of the rows until commit; another writer of the same
    visitors waits here. Sorted keys: two writers never wait on each other in a cycle."""
    keys = {(r["visitor_id"] + r["site_id"] * _MIX) % 2**64 - 2**63 for r in rows}
    cursor.execute(_LOCK_VISITORS, (_json_list(sorted(keys)),))


def _copy_events(cursor: Cursor, rows: list[dict[str, Any]]) -> None:
    plain = _EVENT_PLAIN
    with cursor.copy(_EVENT_COPY) as copy:
        copy.set_types(_EVENT_COPY_TYPES)
        write = copy.write_row
        for row in rows:
            write((*plain(row), _json(row["props"])))


def _write_visits(cursor: Cursor, visits: BulkVisits, rows: list[dict[str, Any]]) -> None:
    touched = {row["session_id"]: None for row in rows}  # ordered, unique
    new = [visits.records[i] for i in touched if i not in visits.stored]
    changed = [visits.records[i] for i in touched if i in visits.stored]
    if new:
        with cursor.copy(_VISIT_COPY) as copy:
            copy.set_types(VISIT_TYPES)
            for record in new:
                copy.write_row(record.values(_NEW_VISIT))
    if changed:
        cursor.execute(_CREATE_CHANGES)
        with cursor.copy(_CHANGES_COPY) as copy:
            copy.set_types(CHANGE_TYPES)
            for record in changed:
                copy.write_row(record.values(_CHANGED_VISIT))
        cursor.execute(_APPLY_CHANGES)


def write(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert new events and update their visits in the current transaction (PostgreSQL);
    the rows it stored (not those stored before: a retried batch)."""
    batch = _first_of_each(rows)
    if not batch:
        return []
    db.session.flush()  # as the ORM path's first SELECT would (autoflush)
    connection = db.session.connection().connection.driver_connection
    with connection.cursor() as cursor:
        _lock_visitors(cursor, batch)
        for _ in range(ATTEMPTS):
            seen = _stored(cursor, batch)
            fresh = [r for r in batch if (r["site_id"], r["event_uid"]) not in seen]
            if not fresh:
                return []
            sent_ids = [r["session_id"] for r in fresh]
            visits = BulkVisits(cursor, fresh)
            sessions.assign(fresh, visits)
            cursor.execute(f"SAVEPOINT {_SAVEPOINT}")
            try:
                _copy_events(cursor, fresh)
                _write_visits(cursor, visits, fresh)
            except errors.UniqueViolation:
                # Another writer stored one of these events (or visit ids) first.
                cursor.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
                for row, sid in zip(fresh, sent_ids, strict=True):
                    row["session_id"] = sid
                continue
            cursor.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            return fresh
    raise RuntimeError(f"lost the race for the same events {ATTEMPTS} times in a row")
