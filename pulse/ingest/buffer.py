"""The durable ingest buffer: a Redis list that workers drain in bulk.

Reliable-queue pattern: a drainer moves items to its own processing list, writes
them to the database, commits, and only then deletes the processing list. A
drainer that dies mid-batch leaves its list behind; any live drainer moves such
orphaned lists back to the queue (their heartbeat key has expired). Writing is
idempotent on event ids, so an item written twice is counted once.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import datetime
from typing import Any

import orjson
from flask import Flask, current_app
from redis import Redis
from redis.exceptions import RedisError

from pulse.extensions import db

log = logging.getLogger(__name__)
QUEUE = "pulse:ingest:queue"
PROCESSING = "pulse:ingest:processing:"
HEARTBEAT = "pulse:ingest:alive:"
HEARTBEAT_TTL = 30
RECOVER_EVERY = 5.0  # seconds between looks for the lists of dead drainers
PERSISTENCE_RECHECK = 60.0  # seconds between two INFO persistence of one Redis
MAX_ITEMS = 200  # requests per drain batch (each holds up to 100 events)

_connections: dict[str, Redis] = {}
_persists: dict[str, tuple[float, bool]] = {}


class NotDurable(RedisError):
    """This Redis keeps nothing on disk: what it acknowledged dies with it."""


def connection(url: str | None = None) -> Redis:
    url = url or current_app.config["REDIS_URL"]
    if url not in _connections:
        _connections[url] = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    return _connections[url]


def _default(value: Any) -> Any:
    raise TypeError(f"cannot buffer {type(value).__name__}")


def persists(url: str | None = None) -> bool:
    """Whether Redis appends what it acknowledges to its AOF (asked once a minute)."""
    url = url or current_app.config["REDIS_URL"]
    now = time.monotonic()
    hit = _persists.get(url)
    if hit is not None and now - hit[0] < PERSISTENCE_RECHECK:
        return hit[1]
    aof = connection(url).info("persistence").get("aof_enabled") == 1
    if not aof and (hit is None or hit[1]):
        log.warning("Redis has no append-only file: tracking events are written directly")
    _persists[url] = (now, aof)
    return aof


def push(rows: list[dict[str, Any]]) -> None:
    """One list item per request; raises RedisError when Redis does not answer or persist."""
    if current_app.config.get("INGEST_BUFFER_REQUIRE_AOF", True) and not persists():
        raise NotDurable("Redis keeps nothing on disk")
    connection().rpush(QUEUE, orjson.dumps(rows, default=_default))


def _decode(item: bytes) -> list[dict[str, Any]]:
    rows = orjson.loads(item)
    for row in rows:
        row["ts"] = datetime.fromisoformat(row["ts"])
    return rows


def pending() -> int:
    """Requests waiting in the queue (for health and tests)."""
    return int(connection().llen(QUEUE))


class Drainer:
    """Moves buffered events into the database until stopped."""

    def __init__(self, app: Flask, name: str | None = None) -> None:
        self.app = app
        self.name = name or uuid.uuid4().hex
        self.processing = PROCESSING + self.name
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def redis(self) -> Redis:
        return connection(self.app.config["REDIS_URL"])

    def recover_orphans(self) -> int:
        """Put back the items of drainers that died mid-batch."""
        moved = 0
        redis = self.redis()
        for key in redis.scan_iter(match=PROCESSING + "*"):
            owner = key.decode()[len(PROCESSING) :]
            if owner == self.name or redis.exists(HEARTBEAT + owner):
                continue
            while redis.lmove(key, QUEUE, "LEFT", "RIGHT") is not None:
                moved += 1
        return moved

    def drain_once(self, block_seconds: float = 1.0) -> int:
        """One batch: claim, write, commit, release. Returns events written."""
        redis = self.redis()
        redis.set(HEARTBEAT + self.name, "1", ex=HEARTBEAT_TTL)
        items = redis.lrange(self.processing, 0, -1)  # a batch left by our own crash
        if not items:
            first = redis.blmove(QUEUE, self.processing, block_seconds, "LEFT", "RIGHT")
            if first is None:
                return 0
            items = [first]
            while len(items) < MAX_ITEMS:
                item = redis.lmove(QUEUE, self.processing, "LEFT", "RIGHT")
                if item is None:
                    break
                items.append(item)
        from pulse.ingest.store import write

        rows = [row for item in items for row in _decode(item)]
        with self.app.app_context():
            try:
                written = write(rows)
                db.session.commit()
            except Exception:
                db.session.rollback()
                raise
            finally:
                db.session.remove()
        redis.delete(self.processing)
        return written

    def run(self) -> None:
        """Drain until `stop()`; the batch in hand is always finished first."""
        next_recovery = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() >= next_recovery:
                    # Not only at start: a drainer killed a moment ago still has a live
                    # heartbeat, and its list must be picked up once that expires.
                    self.recover_orphans()
                    next_recovery = time.monotonic() + RECOVER_EVERY
                self.drain_once()
            except Exception:
                log.exception("ingest drain failed; retrying")
                self.stopping.wait(1.0)

    def start(self) -> Drainer:
        self.thread = threading.Thread(target=self.run, name="pulse-drain", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)
        self.redis().delete(HEARTBEAT + self.name)


def drain_all(app: Flask) -> int:
    """Drain the queue now, in this process (tests, `pulse ingest drain`)."""
    drainer = Drainer(app)
    total = 0
    drainer.recover_orphans()
    while True:
        written = drainer.drain_once(block_seconds=0.01)
        total += written
        if (
            written == 0
            and not drainer.redis().llen(QUEUE)
            and not drainer.redis().llen(drainer.processing)
        ):
            return total
