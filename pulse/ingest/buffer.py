"""The durable ingest buffer: a Redis list that workers drain in bulk.

accept.py pushes one list item per tracking request (an orjson list of rows), in
the same Lua script that counts the request's limits.
Reliable-queue pattern: a drainer moves items to its own processing list, writes
them to the database, commits, and only then deletes the processing list. A
drainer that dies mid-batch leaves its list behind; any live drainer moves such
orphaned lists back to the queue (their heartbeat key has expired). Writing is
idempotent on event ids, so an item written twice is counted once.

A batch is claimed in one round trip: a Lua script (CLAIM_LUA) renews the drainer's
heartbeat, returns what its processing list holds and LMOVEs items onto it until the
queue is empty or the batch is full, sized from the recent item size to about
MAX_BYTES. Scripts are replicated by their effects, so the append-only file logs one
short LMOVE per item, never the item again. After a failed batch the drainer first
finishes the list it holds. Only an empty queue costs a second, blocking, call.
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

from pulse.extensions import db

log = logging.getLogger(__name__)
QUEUE = "pulse:ingest:queue"
PROCESSING = "pulse:ingest:processing:"
HEARTBEAT = "pulse:ingest:alive:"
HEARTBEAT_TTL = 30
RECOVER_EVERY = 5.0  # seconds between looks for the lists of dead drainers
PERSISTENCE_RECHECK = 60.0  # seconds between two INFO persistence of one Redis
MAX_ITEMS = 500  # requests per drain batch (each holds up to 100 events) ...
MAX_BYTES = 4_000_000  # ... and about this much JSON: ~4,500 events of ~900 bytes
FIRST_ITEM_BYTES = 90_000.0  # a guess at an item's size until one has been seen
# After a batch that emptied the queue, wait this long before the next claim: single
# events then reach the database in batches of hundreds, not one commit each, which
# costs PostgreSQL and the drainer several times less per event. Events are durable in
# Redis meanwhile; they are stored at most this much later. With several drainers, each
# waits this long times their number, so the queue is still claimed about five times a
# second in all and the batches stay as large as one drainer's.
LINGER_SECONDS = 0.2

# KEYS: queue, our processing list, our heartbeat. ARGV: items to move at most,
# heartbeat TTL. Returns {moved, held..., taken...}: what the list held before, then
# what was moved now; stops at the first empty LMOVE (a MULTI of fixed size sent one
# LMOVE per possible item, most of them for nothing when single events trickle in).
CLAIM_LUA = """
redis.call("SET", KEYS[3], "1", "EX", tonumber(ARGV[2]))
local items = redis.call("LRANGE", KEYS[2], 0, -1)
local moved = 0
for _ = 1, tonumber(ARGV[1]) do
  local item = redis.call("LMOVE", KEYS[1], KEYS[2], "LEFT", "RIGHT")
  if not item then break end
  moved = moved + 1
  items[#items + 1] = item
end
table.insert(items, 1, moved)
return items
"""

_connections: dict[str, Redis] = {}
_persists: dict[str, tuple[float, bool]] = {}


def connection(url: str | None = None) -> Redis:
    url = url or current_app.config["REDIS_URL"]
    if url not in _connections:
        _connections[url] = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    return _connections[url]


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


def decode(items: list[bytes]) -> list[dict[str, Any]]:
    """The rows of queue items, timestamps parsed (orjson, then fromisoformat in C)."""
    rows = [row for item in items for row in orjson.loads(item)]
    parse = datetime.fromisoformat
    for row in rows:
        row["ts"] = parse(row["ts"])
    return rows


def pending() -> int:
    """Requests waiting in the queue (for health and tests)."""
    return int(connection().llen(QUEUE))


class Drainer:
    """Moves buffered events into the database until stopped."""

    def __init__(
        self,
        app: Flask,
        name: str | None = None,
        max_items: int = MAX_ITEMS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.app = app
        self.max_items, self.max_bytes = max_items, max_bytes
        self.name = name or uuid.uuid4().hex
        self.processing = PROCESSING + self.name
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.item_bytes = FIRST_ITEM_BYTES  # running mean of claimed items' sizes
        self.unfinished = True  # our processing list may hold items: finish them first
        self.queue_emptied = False  # the last claim took all the queue had
        self.drainers = 1  # live drainers (their heartbeat keys), counted now and then
        self._claim_script = self.redis().register_script(CLAIM_LUA)

    def redis(self) -> Redis:
        return connection(self.app.config["REDIS_URL"])

    def recover_orphans(self) -> int:
        """Put back the items of drainers that died mid-batch, ship the spools of dead
        web processes on this host (spool.py); count the live drainers."""
        from pulse.ingest import spool

        config, moved = self.app.config, 0
        if config.get("INGEST_SPOOL", True):
            url = config["REDIS_URL"]
            moved += spool.recover(spool.directory_for(config, url), url)
        redis = self.redis()
        mine = (HEARTBEAT + self.name).encode()
        self.drainers = 1 + sum(1 for key in redis.scan_iter(match=HEARTBEAT + "*") if key != mine)
        for key in redis.scan_iter(match=PROCESSING + "*"):
            owner = key.decode()[len(PROCESSING) :]
            if owner == self.name or redis.exists(HEARTBEAT + owner):
                continue
            while redis.lmove(key, QUEUE, "LEFT", "RIGHT") is not None:
                moved += 1
        return moved

    def claim(self) -> list[bytes]:
        """Our unfinished items, or what we hold plus a batch from the queue: one round trip."""
        keys = [QUEUE, self.processing, HEARTBEAT + self.name]
        if self.unfinished:
            _, *held = self._claim_script(keys=keys, args=[0, HEARTBEAT_TTL])  # moves none
            if held:
                return held
            self.unfinished = False
        count = max(1, min(self.max_items, int(self.max_bytes / self.item_bytes)))
        moved, *items = self._claim_script(keys=keys, args=[count, HEARTBEAT_TTL])
        taken = items[len(items) - moved :] if moved else []  # after the item BLMOVE gave us
        self.queue_emptied = moved < count
        if taken:
            self.item_bytes = max(100.0, sum(map(len, taken)) / len(taken))
        self.unfinished = bool(items)  # until drain_once has written and released them
        return items

    def drain_once(self, block_seconds: float = 1.0) -> int:
        """One batch: claim, write, commit, release. Returns events written."""
        items = self.claim()
        if not items:
            first = self.redis().blmove(QUEUE, self.processing, block_seconds, "LEFT", "RIGHT")
            if first is None:
                return 0
            items = self.claim()  # the item just moved, and whatever came with it
        from pulse.ingest.store import write

        rows = decode(items)
        with self.app.app_context():
            try:
                written = write(rows)
                db.session.commit()
            except Exception:
                db.session.rollback()
                raise
            finally:
                db.session.remove()
        self.redis().delete(self.processing)
        self.unfinished = False
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
                if self.drain_once() and self.queue_emptied:
                    self.stopping.wait(LINGER_SECONDS * self.drainers)
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
