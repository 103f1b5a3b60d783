"""Drain path micro-benchmark: store.write + commit, old (ORM) and new (bulk), and Redis -> DB.

    .venv/bin/python bench/drain.py [--events 50000] [--batch 5000] [--orm-events 20000]

Loopback only, bounded (--time-limit seconds per phase, default 60). Creates a throwaway
PostgreSQL database (CREATE DATABASE bench_drain_<random> on BENCH_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432/test; dropped at the end), migrates it as `flask db
upgrade` does, and creates a team and one site per phase. Rows are shaped like
pipeline.prepare_item's (verdicts from detection.classify, user-agent parsing from
enrich): --visitors visitors (default 1000), 50 paths, unique event ids, about 5%
session_end rows with behaviour, 5% custom events with props, 10% of visitors sending
their own session id, 4% bots and AI agents, 1% retried (duplicate) events, and gaps
of more than 30 minutes now and then. Phases, each on a fresh site:

  1. orm:   store.write_orm(batch) + commit, --orm-events events (the pre-bulk path);
  2. bulk:  store.write(batch) + commit (bulk.write on PostgreSQL), --events events;
  3. drain: items of 100 rows pushed to Redis (database --redis-db of REDIS_URL's
     server, default 11, which must be empty; flushed at the end), then
     Drainer.drain_once until the queue is empty, with 1 and 2 drainer threads.
Figures: events/s and us/event of wall time (PostgreSQL's own work included, it runs
on this machine) and us/event of this process's CPU time. It prints, never asserts.
Like `pulse worker`, it calls gc.freeze() once the app is loaded (--no-gc-freeze: not).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import secrets
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
from flask import Flask
from psycopg import sql
from redis import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pulse import create_app  # noqa: E402
from pulse.detection import classify  # noqa: E402
from pulse.extensions import db  # noqa: E402
from pulse.ingest import buffer, store  # noqa: E402
from pulse.ingest.pipeline import client_columns  # noqa: E402

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
GPTBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot"
)
CURL = "curl/8.5.0"
HEADERS = {"accept-language": "en-GB,en;q=0.9", "accept": "*/*"}
ITEM_ROWS = 100


class Rows:
    """Realistic rows for one site: what prepare_item would have produced."""

    def __init__(self, site_id: int, visitors: int, seed: int) -> None:
        self.site_id = site_id
        self.rnd = random.Random(seed)
        self.visitors = [self._visitor(n) for n in range(visitors)]
        # A sample to repeat from (kept small: a large heap makes the GC cost more here
        # than it does in a worker).
        self.sent: deque[dict[str, Any]] = deque(maxlen=2000)
        self.clock = datetime.now(UTC) - timedelta(hours=2)

    def _visitor(self, n: int) -> dict[str, Any]:
        ua = self.rnd.choices([CHROME, FIREFOX, IPHONE, GPTBOT, CURL], [60, 20, 16, 2, 2])[0]
        verdict = classify(ua, HEADERS if ua not in (GPTBOT, CURL) else {}, None, "10.1.2.3")
        return {
            "visitor_id": self.rnd.getrandbits(62),
            "explicit": n % 10 == 0,
            "session": 0,
            "fields": client_columns(ua, verdict),
        }

    def one(self) -> dict[str, Any]:
        rnd = self.rnd
        if self.sent and rnd.random() < 0.01:  # a retried request: the same event again
            return dict(rnd.choice(self.sent))
        self.clock += timedelta(milliseconds=rnd.randrange(1, 150))
        visitor = rnd.choice(self.visitors)
        if rnd.random() < 0.002:
            visitor["session"] += 1  # comes back after a pause: a new visit
        name = rnd.choices(["pageview", "signup", "session_end"], [90, 5, 5])[0]
        path = f"/p{rnd.randrange(50)}"
        row = {
            "site_id": self.site_id,
            "event_uid": uuid.uuid4().hex,
            "ts": self.clock - timedelta(hours=visitor["session"] % 2),
            "name": name,
            "session_id": f"s{visitor['visitor_id']}-{visitor['session']}"
            if visitor["explicit"]
            else "",
            "visitor_id": visitor["visitor_id"],
            "user_id": None,
            "hostname": "bench.example",
            "pathname": path,
            "referrer": None,
            "referrer_host": None,
            "source": None,
            "channel": "direct",
            "utm_source": "news" if path == "/p1" else None,
            "utm_medium": None,
            "utm_campaign": None,
            "utm_term": None,
            "utm_content": None,
            "country": "GB",
            **visitor["fields"],
            "props": {"plan": "pro", "step": rnd.randrange(3)} if name == "signup" else {},
            "engaged_ms": rnd.randrange(60_000) if name == "session_end" else None,
            "scroll_depth": rnd.randrange(101) if name == "session_end" else None,
            "behaviour": {"pointer_moves": rnd.randrange(80), "scrolls": rnd.randrange(9)}
            if name == "session_end"
            else None,
        }
        self.sent.append(row)
        return row

    def batch(self, n: int) -> list[dict[str, Any]]:
        return [self.one() for _ in range(n)]


def make_site(name: str) -> int:
    from pulse.accounts import users
    from pulse.accounts.actor import Actor
    from pulse.sites import service as sites
    from pulse.teams import service as teams

    owner = users.sign_up(f"{name}@bench.example", "correct horse battery staple", name)
    db.session.flush()
    team = teams.create_team(Actor(user=owner), f"Bench {name}", tier="enterprise")
    db.session.flush()
    site = sites.create_site(Actor(user=owner), team, name=name, domain=f"{name}.example")
    db.session.commit()
    return site.id


def report(label: str, events: int, wall: float, cpu: float, extra: str = "") -> None:
    print(
        f"{label:<34} {events:>7} events  {events / wall:>9,.0f} events/s  "
        f"{wall / events * 1e6:>6.1f} us/event wall  {cpu / events * 1e6:>6.1f} us/event CPU"
        + (f"  {extra}" if extra else ""),
        flush=True,
    )


def timed_writes(
    label: str,
    write: Callable[[list[dict[str, Any]]], int],
    rows: Rows,
    events: int,
    batch: int,
    limit: float,
) -> None:
    """write + commit, batch after batch, until `events` or the time limit."""
    done = stored = 0
    wall = cpu = 0.0
    deadline = time.monotonic() + limit
    while done < events and time.monotonic() < deadline:
        chunk = rows.batch(min(batch, events - done))
        start, start_cpu = time.perf_counter(), time.process_time()
        stored += write(chunk)
        db.session.commit()
        wall += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        db.session.remove()
        done += len(chunk)
    report(label, done, wall, cpu, f"(stored {stored}, batch {batch})")


def drain(app, redis: Redis, rows: Rows, events: int, threads: int, limit: float) -> None:
    """Push items, then drain with `threads` drainers until the queue is empty."""
    items = [
        orjson.dumps(rows.batch(min(ITEM_ROWS, events - n))) for n in range(0, events, ITEM_ROWS)
    ]
    for n in range(0, len(items), 500):
        redis.rpush(buffer.QUEUE, *items[n : n + 500])
    written = [0] * threads
    deadline = time.monotonic() + limit

    def work(n: int) -> None:
        drainer = buffer.Drainer(app)
        while time.monotonic() < deadline:
            got = drainer.drain_once(block_seconds=0.05)
            written[n] += got
            if not got and not redis.llen(buffer.QUEUE):
                return

    start, start_cpu = time.perf_counter(), time.process_time()
    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    left = redis.llen(buffer.QUEUE)
    report(
        f"drain, {threads} drainer thread{'s' if threads > 1 else ''}",
        events,
        wall,
        cpu,
        f"(stored {sum(written)}, {left} items left)",
    )


def decode_cost(rows: Rows, events: int) -> None:
    """buffer.decode of one drain batch, best of five (the first run pays for new memory)."""
    items = [orjson.dumps(rows.batch(ITEM_ROWS)) for _ in range(max(1, events // ITEM_ROWS))]
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        decoded = buffer.decode(items)
        best = min(best, time.process_time() - start)
        del decoded
    print(
        f"{'buffer.decode (best of 5)':<34} {events:>7} events  "
        f"{best / events * 1e6:.2f} us/event CPU"
    )


@contextmanager
def throwaway_app(
    server: str, prefix: str, keep: str | None = None, **config: Any
) -> Iterator[tuple[Flask, str]]:
    """A migrated app, in its app context, on a new database `<prefix>_<random>` of
    `server`; the database is dropped on the way out, whatever happens. With `keep`,
    the database of that name is used (created if missing) and kept."""
    from flask_migrate import upgrade

    name = keep or f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    try:
        app = create_app(
            {
                "PULSE_ENV": "test",
                "SQLALCHEMY_DATABASE_URI": url,
                "SECRET_KEY": secrets.token_urlsafe(32),
                "RATELIMIT_ENABLED": False,
                "RATELIMIT_STORAGE_URI": "memory://",
                **config,
            }
        )
        with app.app_context():
            upgrade()
            try:
                yield app, name
            finally:
                db.session.remove()
                db.engine.dispose()
    finally:
        if keep is None:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="bulk and drain phases")
    parser.add_argument("--orm-events", type=int, default=20_000, help="ORM phase")
    parser.add_argument("--batch", type=int, default=5000, help="events per write call")
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--skip-orm", action="store_true")
    parser.add_argument(
        "--no-gc-freeze", action="store_true", help="leave out the gc.freeze() of `pulse worker`"
    )
    args = parser.parse_args()
    server = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    redis_server = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    redis_url = urlunsplit(urlsplit(redis_server)._replace(path=f"/{args.redis_db}"))
    redis = Redis.from_url(redis_url)
    if redis.dbsize():
        raise SystemExit(f"{redis_url} is not empty: pick a free database with --redis-db")
    try:
        with throwaway_app(server, "bench_drain", REDIS_URL=redis_url) as (app, name):
            if not args.no_gc_freeze:
                gc.freeze()  # as `pulse worker` does once the app is loaded
            print(f"database {name}, Redis {redis_url}, {os.cpu_count()} CPUs", flush=True)
            decode_cost(Rows(0, args.visitors, 0), 5000)
            if not args.skip_orm:
                rows = Rows(make_site("orm"), args.visitors, 1)
                timed_writes(
                    "store.write_orm + commit (old)",
                    store.write_orm,
                    rows,
                    args.orm_events,
                    args.batch,
                    args.time_limit,
                )
            rows = Rows(make_site("bulk"), args.visitors, 2)
            timed_writes(
                "store.write + commit (bulk)",
                store.write,
                rows,
                args.events,
                args.batch,
                args.time_limit,
            )
            for threads in (1, 2):
                rows = Rows(make_site(f"drain{threads}"), args.visitors, 2 + threads)
                drain(app, redis, rows, args.events, threads, args.time_limit)
    finally:
        redis.flushdb()


if __name__ == "__main__":
    main()
