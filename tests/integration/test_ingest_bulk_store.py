"""The PostgreSQL bulk path of store.write stores exactly what the ORM path stores.

Both paths run on the same generated batches (duplicates within and across batches,
explicit session ids, 30-minute gaps, session_end, bot and agent labels, two sites)
in a PostgreSQL database of this module's own, and every column of every event and
visit is compared, JSON as stored text too. Visit ids drawn at random are drawn from
a counter here, so both runs name their visits alike.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import count
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from pulse import create_app
from pulse.detection import classify
from pulse.extensions import db
from pulse.ingest import bulk, sessions, store
from pulse.ingest.pipeline import client_columns
from pulse.models import Event, Visit
from tests.conftest import _empty_tables, _settings
from tests.factories import make_tenant
from tests.integration.test_worker import fresh_postgres_database

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
GPTBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot"
)
CURL = "curl/8.5.0"
HEADERS = {"accept-language": "en-GB,en;q=0.9", "accept": "*/*"}
BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pg_app(postgres_url: str) -> Iterator[Flask]:
    """An app on a PostgreSQL database of its own, migrated here, dropped at the end."""
    with fresh_postgres_database(postgres_url) as url:
        app = create_app(_settings(url.replace("postgresql://", "postgresql+psycopg://", 1)))
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            db.session.remove()
        yield app
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def pg(pg_app: Flask) -> Iterator[SimpleNamespace]:
    with pg_app.app_context():
        alpha, beta = make_tenant("alpha"), make_tenant("beta")
        yield SimpleNamespace(app=pg_app, alpha=alpha.site.id, beta=beta.site.id)
        db.session.remove()
        _empty_tables()


def row(site_id: int, visitor: int, ts: datetime, name: str, path: str, ua: str) -> dict:
    """A row shaped like pipeline.prepare_item's."""
    verdict = classify(ua, HEADERS if ua == CHROME else {}, None, "10.0.0.1")
    return {
        "site_id": site_id,
        "event_uid": f"u{random.getrandbits(48):x}",
        "ts": ts,
        "name": name,
        "session_id": "",
        "visitor_id": visitor,
        "user_id": None,
        "hostname": "alpha.example",
        "pathname": path,
        "referrer": "https://news.example/a" if path == "/" else None,
        "referrer_host": "news.example" if path == "/" else None,
        "source": "news.example" if path == "/" else None,
        "channel": "referral" if path == "/" else "internal",
        "utm_source": "mail" if path == "/pricing" else None,
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "country": "GB",
        **client_columns(ua, verdict),
        "props": {},
        "engaged_ms": None,
        "scroll_depth": None,
        "behaviour": None,
    }


def make_batches(sites: list[int], seed: int = 7) -> list[list[dict[str, Any]]]:
    """Four batches of a few hundred rows with every case the session rules know."""
    rnd = random.Random(seed)
    random.seed(seed)  # row() draws event ids from the module's generator
    clock: dict[tuple[int, int], datetime] = {}
    uas: dict[tuple[int, int], str] = {}
    rows: list[dict[str, Any]] = []
    for _ in range(700):
        site = rnd.choice(sites)
        visitor = rnd.randrange(40)
        key = (site, visitor)
        if key not in clock:
            clock[key] = BASE + timedelta(seconds=rnd.randrange(600))
            uas[key] = rnd.choices([CHROME, GPTBOT, CURL], [8, 1, 1])[0]
        clock[key] += rnd.choice(
            [timedelta(seconds=5), timedelta(minutes=2), timedelta(minutes=29, seconds=59)]
            + [timedelta(minutes=30), timedelta(minutes=31), timedelta(hours=3)]
        )
        # A human now and then turns out to be an agent: the visit's label is upgraded.
        ua = GPTBOT if uas[key] == CHROME and rnd.random() < 0.03 else uas[key]
        name = rnd.choices(["pageview", "signup", "session_end"], [14, 3, 3])[0]
        ts = clock[key] - timedelta(minutes=rnd.choice([0, 0, 0, 0, 1, 45]))  # late arrivals
        r = row(site, visitor, ts, name, rnd.choice(["/", "/pricing", "/docs", "/blog/é"]), ua)
        if name == "signup":
            r["props"] = {"plan": rnd.choice(["free", "pro"]), "note": "café ☕"}
        if name == "session_end":
            r["engaged_ms"] = rnd.choice([None, 500, 15_000, 120_000])
            r["scroll_depth"] = rnd.choice([None, 10, 90])
            r["behaviour"] = rnd.choice(
                [None, {"pointer_moves": 40, "scrolls": 6, "clicks": 2}, {"pointer_moves": 0}]
            )
        if visitor % 5 == 0:  # seed 001: the client keeps a session id
            r["session_id"] = f"s-{visitor}-{(clock[key] - BASE) // timedelta(hours=2)}"
        if visitor == 7:  # the same id from another visitor: a new visit, not theirs
            r["session_id"] = "s-5-0"
        rows.append(r)
    batches = [rows[i : i + 175] for i in range(0, len(rows), 175)]
    # Repeats in a batch (a changed copy: the first one wins), and retries of an
    # earlier batch's events in a later one.
    batches[1].insert(10, {**batches[1][3], "pathname": "/second-copy"})
    batches[2].extend(copy.deepcopy(batches[0][:20]))
    batches[3].extend(copy.deepcopy(batches[2][50:60]))
    batches[3].append(copy.deepcopy(batches[3][0]))
    return batches


def snapshot() -> dict[str, list]:
    """Every column of every event and visit, and the stored JSON text."""
    db.session.expire_all()

    def columns(obj: Any) -> dict[str, Any]:
        return {c.name: getattr(obj, c.name) for c in obj.__table__.columns}

    return {
        "events": [columns(e) for e in db.session.scalars(select(Event).order_by(Event.id))],
        "visits": [columns(v) for v in db.session.scalars(select(Visit).order_by(Visit.id))],
        "event_json": db.session.execute(
            text("SELECT id, props::text FROM events ORDER BY id")
        ).all(),
        "visit_json": db.session.execute(
            text(
                "SELECT id, reasons::text, detection::text, behaviour::text FROM visits ORDER BY id"
            )
        ).all(),
    }


def run(write, batches: list[list[dict[str, Any]]], monkeypatch) -> tuple[list[int], dict]:
    ids = count(1)
    monkeypatch.setattr(
        sessions, "uuid", SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=f"v{next(ids):06d}"))
    )
    written = []
    for batch in batches:
        written.append(write(copy.deepcopy(batch)))
        db.session.commit()
    result = snapshot()
    db.session.remove()
    with db.engine.begin() as conn:
        conn.execute(text("TRUNCATE events, visits RESTART IDENTITY"))
    return written, result


@pytest.mark.postgres
def test_bulk_path_stores_what_the_orm_path_stores(pg, monkeypatch):
    batches = make_batches([pg.alpha, pg.beta])
    orm_written, orm = run(store.write_orm, batches, monkeypatch)
    bulk_written, new = run(store.write, batches, monkeypatch)
    assert orm_written == bulk_written and sum(orm_written) == len(orm["events"]) > 600
    assert len(orm["visits"]) > 100
    assert {v["label"] for v in orm["visits"]} == {"human", "bot", "agent"}
    assert any(v["ended_at"] and v["engagement_score"] for v in orm["visits"])
    assert any(v["behaviour"].get("pointer_moves") for v in orm["visits"])
    for key in orm:
        assert len(new[key]) == len(orm[key]), key
        for a, b in zip(orm[key], new[key], strict=True):
            assert a == b, key


@pytest.mark.postgres
def test_two_writes_in_one_transaction(pg):
    [first, second] = [make_batches([pg.alpha], seed=n)[0] for n in (1, 2)]
    assert store.write(first) + store.write(second) == len(first) + len(second)
    db.session.commit()
    assert db.session.scalar(select(db.func.count()).select_from(Event)) == 350
    pageviews = db.session.scalar(select(db.func.sum(Visit.pageviews)))
    assert pageviews == sum(r["name"] == "pageview" for r in first + second)


def _until_a_backend_waits_on_a_lock(app: Flask, what: str) -> None:
    """Poll (bounded) until another connection of this database waits on a lock."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    with app.app_context(), db.engine.connect() as conn:
        while not conn.execute(query).scalar():
            if time.monotonic() > deadline:
                pytest.fail(f"no writer waited on a lock within 30 s: {what}")
            time.sleep(0.01)


def start_other_writer(
    app: Flask, rows: list[dict[str, Any]]
) -> tuple[threading.Thread, dict[str, Any]]:
    """`store.write(rows)` and commit in a thread of its own: its outcome once joined."""
    outcome: dict[str, Any] = {}

    def other_writer() -> None:
        with app.app_context():
            try:
                outcome["written"] = store.write(rows)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported by the caller's assertion
                outcome["error"] = exc
            finally:
                db.session.remove()

    thread = threading.Thread(target=other_writer)
    thread.start()
    return thread, outcome


@pytest.mark.postgres
def test_racing_writers_store_each_event_once_and_count_it_once(pg):
    """The second writer waits on the first's rows, then recomputes without them."""
    [batch] = make_batches([pg.alpha], seed=3)[:1]
    overlap = copy.deepcopy(batch[:100]) + make_batches([pg.alpha], seed=4)[0][:50]
    store.write(copy.deepcopy(batch))  # uncommitted: holds its rows' unique keys
    thread, outcome = start_other_writer(pg.app, copy.deepcopy(overlap))
    _until_a_backend_waits_on_a_lock(pg.app, "the second writer of the same events")
    assert thread.is_alive()  # blocked on the first writer's uncommitted rows
    db.session.commit()
    thread.join(30)
    assert outcome.get("written") == 50, outcome
    db.session.expire_all()
    assert db.session.scalar(select(db.func.count()).select_from(Event)) == len(batch) + 50
    counted = db.session.execute(
        select(Visit.id, Visit.pageviews, Visit.events).order_by(Visit.id)
    ).all()
    stored = db.session.execute(
        select(
            Event.session_id,
            db.func.count().filter(Event.name == "pageview"),
            db.func.count().filter(Event.name.not_in(["pageview", "session_end"])),
        )
        .group_by(Event.session_id)
        .order_by(Event.session_id)
    ).all()
    assert [tuple(c) for c in counted] == [tuple(s) for s in stored]


@pytest.mark.postgres
def test_two_writers_of_one_visitor_both_count_into_the_visit(pg):
    """The second writer reads the visit as the first one committed it: no lost update."""
    first, second, third = (
        row(pg.alpha, 7, BASE + timedelta(minutes=m), "pageview", f"/p{m}", CHROME)
        for m in (0, 1, 2)
    )
    store.write([first])
    db.session.commit()
    store.write([second])  # uncommitted: the visit now has 2 pageviews, not yet visible
    thread, outcome = start_other_writer(pg.app, [third])
    _until_a_backend_waits_on_a_lock(pg.app, "the second writer of visitor 7")
    db.session.commit()
    thread.join(30)
    assert outcome == {"written": 1}
    db.session.expire_all()
    visits = db.session.execute(select(Visit.pageviews, Visit.exit_path)).all()
    assert [tuple(v) for v in visits] == [(3, "/p2")]


@pytest.mark.postgres
def test_json_and_timestamps_read_back_like_the_orm_wrote_them(pg):
    r = make_batches([pg.alpha])[0][0]
    r.update(props={"ünï": [1, 2.5, None]}, ts=datetime(2026, 3, 2, 10, 0, 0, 123456))  # naive
    assert store.write([r]) == 1
    db.session.commit()
    [event] = db.session.scalars(select(Event))
    assert event.props == {"ünï": [1, 2.5, None]}
    assert event.ts == datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=UTC)
    assert db.session.scalar(text("SELECT props::text FROM events")) == (
        '{"\\u00fcn\\u00ef": [1, 2.5, null]}'
    )
    assert bulk.VisitRecord.__slots__ == tuple(c.name for c in Visit.__table__.columns)
