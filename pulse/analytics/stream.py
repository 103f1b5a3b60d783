"""New events for live viewers: `publish` (called by store.write) and the SSE body.

Stored rows are announced once their transaction commits (a rolled-back batch is
never shown), as one small message per site: the public columns of each hit, never
the visitor id, user id, full referrer, user agent or custom properties.

With REDIS_URL the message is one PUBLISH per site and batch on `pulse:<db>:stream:<site>`,
so a viewer connected to any gunicorn worker sees events stored by any other worker or
by the drainer. Without Redis (SQLite, one process) an in-process hub fans out.
Publishing never fails ingestion: errors are logged and Redis is left alone for a
while after one (short socket timeouts, so a dead Redis costs at most one timeout).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from flask import current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from pulse.analytics.dimensions import EVENTS
from pulse.analytics.query import Query, realtime_query
from pulse.analytics.sql import events_where
from pulse.extensions import db

log = logging.getLogger(__name__)

# Pub/sub ignores database numbers: the number is in the name, so deployments sharing a
# Redis server (on different databases) never see each other's events.
CHANNEL = "pulse:{db}:stream:{site_id}"
PENDING = "pulse.stream.pending"
MAX_PER_MESSAGE = 200  # events of one site and batch; the rest are counted, not sent
REDIS_PAUSE = 30.0  # seconds without publishing after a Redis error
REPLAY_WINDOW = timedelta(minutes=10)
LIVE_HORIZON = timedelta(hours=1)  # older rows (backfills, log imports) are not "live"
REPLAY_LIMIT = 200
QUEUE_SIZE = 1000
# Event columns a viewer gets, by payload key, and the filters they answer.
PUBLIC = {
    "id": "event_uid",
    "name": "name",
    "hostname": "hostname",
    "path": "pathname",
    "label": "label",
    "agent": "agent_name",
    "agent_category": "agent_category",
    "country": "country",
    "browser": "browser",
    "os": "os",
    "device": "device",
    "channel": "channel",
    "source": "source",
    "referrer": "referrer_host",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
}
FILTERABLE = {
    "page": "path",
    "hostname": "hostname",
    "event": "name",
    "agent": "agent",
    "agent_category": "agent_category",
    "country": "country",
    "browser": "browser",
    "os": "os",
    "device": "device",
    "channel": "channel",
    "source": "source",
    "referrer": "referrer",
    **{f"utm_{k}": f"utm_{k}" for k in ("source", "medium", "campaign", "term", "content")},
}
NOT_SHOWN = frozenset({"session_end"})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(moment: datetime) -> int:
    return int(_aware(moment).timestamp() * 1000)


def payload(row: dict[str, Any]) -> dict[str, Any]:
    """What a viewer sees of one stored event (no personal data); how its visit arrived
    (source, channel, referrer, campaign) for every hit of the visit, as in reports."""
    arrival = row.get("arrival") or {}
    out = {key: arrival.get(column, row.get(column)) for key, column in PUBLIC.items()}
    out["id"] = str(out["id"] or "")[:64]
    out["ts"] = _iso(row["ts"])
    out["cursor"] = f"{_ms(row['ts'])}-{out['id']}"
    return out


def messages(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """One message per site: its events (at most MAX_PER_MESSAGE) and how many were left out."""
    by_site: dict[int, list[dict[str, Any]]] = defaultdict(list)
    horizon = datetime.now(UTC) - LIVE_HORIZON
    for row in rows:
        if row.get("name") not in NOT_SHOWN and _aware(row["ts"]) >= horizon:
            by_site[int(row["site_id"])].append(row)
    out = {}
    for site_id, site_rows in by_site.items():
        kept = site_rows[-MAX_PER_MESSAGE:]
        out[site_id] = {
            "events": [payload(r) for r in kept],
            "dropped": len(site_rows) - len(kept),
        }
    return out


# Publishing ---------------------------------------------------------------------------


def publish(rows: list[dict[str, Any]]) -> None:
    """Announce stored events to live viewers once the transaction commits; never raises."""
    try:
        found = messages(rows)
        if not found:
            return
        url = current_app.config.get("REDIS_URL") if has_app_context() else None
        pending = db.session.info.setdefault(PENDING, [])
        pending.append((url, found))
    except Exception:  # noqa: BLE001 - viewers are optional, ingestion is not
        log.exception("could not queue events for the live stream")


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for url, found in session.info.pop(PENDING, []):
        try:
            send(found, url)
        except Exception:  # noqa: BLE001 - an error here would surface from commit()
            log.exception("could not announce events to the live stream")


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)


_publishers: dict[str, Redis] = {}
_paused_until: dict[str, float] = {}


def _publisher(url: str) -> Redis:
    client = _publishers.get(url)
    if client is None:
        client = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        _publishers[url] = client
    return client


def channel(client: Redis, site_id: int) -> str:
    """The pub/sub channel of a site on this Redis database."""
    return CHANNEL.format(db=client.connection_pool.connection_kwargs.get("db", 0), site_id=site_id)


def send(found: dict[int, dict[str, Any]], url: str | None) -> None:
    """Deliver messages: one PUBLISH per site (pipelined) or the in-process hub."""
    if not url:
        for site_id, message in found.items():
            HUB.deliver(site_id, message)
        return
    if time.monotonic() < _paused_until.get(url, 0.0):
        return
    try:
        client = _publisher(url)
        pipe = client.pipeline(transaction=False)
        for site_id, message in found.items():
            pipe.publish(channel(client, site_id), orjson.dumps(message))
        pipe.execute()
    except (RedisError, OSError) as exc:
        _paused_until[url] = time.monotonic() + REDIS_PAUSE
        log.warning("live stream: Redis publish failed (%s); paused %ds", exc, REDIS_PAUSE)


class Hub:
    """In-process fan-out for deployments without Redis (one process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[int, set[queue.Queue[dict[str, Any]]]] = defaultdict(set)

    def subscribe(self, site_id: int) -> queue.Queue[dict[str, Any]]:
        inbox: queue.Queue[dict[str, Any]] = queue.Queue(QUEUE_SIZE)
        with self._lock:
            self._queues[site_id].add(inbox)
        return inbox

    def unsubscribe(self, site_id: int, inbox: queue.Queue[dict[str, Any]]) -> None:
        with self._lock:
            self._queues[site_id].discard(inbox)
            if not self._queues[site_id]:
                del self._queues[site_id]

    def deliver(self, site_id: int, message: dict[str, Any]) -> None:
        with self._lock:
            inboxes = list(self._queues.get(site_id, ()))
        for inbox in inboxes:
            # A stalled viewer loses events; ingestion never waits for one.
            with contextlib.suppress(queue.Full):
                inbox.put_nowait(message)


HUB = Hub()


# Subscribing ----------------------------------------------------------------------------


class Subscription:
    """New messages of one site, from Redis pub/sub or the in-process hub."""

    def __init__(self, site_id: int, url: str | None) -> None:
        self.site_id = site_id
        self._pubsub: Any = None
        self._inbox: queue.Queue[dict[str, Any]] | None = None
        if url:
            client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=None)
            self._client = client
            self._pubsub = client.pubsub()
            self._pubsub.subscribe(channel(client, site_id))
            # Wait for Redis to confirm, so nothing published after we answer is missed.
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                reply = self._pubsub.get_message(timeout=1)
                if reply and reply["type"] == "subscribe":
                    break
        else:
            self._inbox = HUB.subscribe(site_id)

    def get(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None after `timeout` seconds without one."""
        if self._inbox is not None:
            try:
                return self._inbox.get(timeout=timeout)
            except queue.Empty:
                return None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = self._pubsub.get_message(timeout=left)
            if reply and reply["type"] == "message":
                return orjson.loads(reply["data"])
        return None

    def close(self) -> None:
        if self._inbox is not None:
            HUB.unsubscribe(self.site_id, self._inbox)
            return
        try:
            self._pubsub.close()
            self._client.close()
        except (RedisError, OSError):
            pass


# The stream ---------------------------------------------------------------------------


def matcher(q: Query) -> Callable[[dict[str, Any]], bool]:
    """Whether a payload passes the query's classification and filters.

    Raises ValueError naming a filter the stream cannot apply (entry/exit page,
    custom properties: they are not in the payload).
    """
    checks: list[tuple[str, frozenset[str | None]]] = []
    for f in q.filters:
        key = FILTERABLE.get(f.dimension.name)
        if key is None:
            raise ValueError(f.dimension.name)
        checks.append((key, frozenset(f.values)))
    labels = frozenset(q.labels) if q.labels is not None else None

    def matches(item: dict[str, Any]) -> bool:
        if labels is not None and item.get("label") not in labels:
            return False
        return all(item.get(key) in values for key, values in checks)

    return matches


def parse_cursor(raw: str | None) -> tuple[datetime, str] | None:
    """A Last-Event-ID (`<epoch ms>-<event id>`) as (time, id); None when unusable."""
    if not raw:
        return None
    millis, _, uid = raw.strip().partition("-")
    if not millis.isdigit() or len(millis) > 15:
        return None
    try:
        return datetime.fromtimestamp(int(millis) / 1000, UTC), uid
    except (OverflowError, OSError, ValueError):
        return None


def replay(q: Query, cursor: tuple[datetime, str] | None) -> list[dict[str, Any]]:
    """Events stored since a reconnecting viewer's last one (the last 10 minutes at most)."""
    if cursor is None:
        return []
    since, last_uid = cursor
    start = max(since, q.now - REPLAY_WINDOW)
    if start > q.now:
        return []
    window = q.window(start, q.now + timedelta(minutes=1))
    columns = [EVENTS.c.ts, *(EVENTS.c[c] for c in PUBLIC.values())]
    statement = (
        select(*columns)
        .where(*events_where(window))
        .order_by(EVENTS.c.ts, EVENTS.c.id)
        .limit(REPLAY_LIMIT + 1)
    )
    rows = [dict(r) for r in db.session.execute(statement).mappings()]
    matches = matcher(q)
    found = [payload(r) for r in rows if r["event_uid"] != last_uid]
    return [p for p in found if matches(p)][:REPLAY_LIMIT]


def _frame(item: dict[str, Any]) -> bytes:
    cursor = item["cursor"].replace("\n", "").replace("\r", "")
    return b"id: " + cursor.encode() + b"\ndata: " + orjson.dumps(item) + b"\n\n"


def sse(
    subscription: Subscription,
    matches: Callable[[dict[str, Any]], bool],
    *,
    backlog: list[dict[str, Any]] | None = None,
    heartbeat: float = 15.0,
    lifetime: float = 300.0,
    retry_ms: int = 3000,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[bytes]:
    """The text/event-stream body: `retry:`, replayed events, new events, heartbeats.

    Ends after `lifetime` seconds (the browser reconnects with Last-Event-ID after
    `retry_ms`), so a stream never holds a server thread for long.
    """
    ends = clock() + lifetime
    try:
        yield f"retry: {retry_ms}\n: connected\n\n".encode()
        for item in backlog or ():
            yield _frame(item)
        while (left := ends - clock()) > 0:
            try:
                message = subscription.get(min(heartbeat, left))
            except (RedisError, OSError) as exc:  # the client reconnects and resumes
                log.warning("live stream: subscription lost (%s)", exc)
                break
            if message is None:
                yield b": heartbeat\n\n"
                continue
            chunk = b"".join(_frame(i) for i in message.get("events", ()) if matches(i))
            if chunk:
                yield chunk
        yield b"event: reconnect\ndata: {}\n\n"
    finally:
        subscription.close()


def live(q: Query) -> dict[str, Any]:
    """Seed 002's live snapshot: the realtime report plus the agents active right now."""
    from pulse.analytics import reports  # the ingest path imports this module: keep it light
    from pulse.analytics.breakdowns import breakdown

    result = reports.realtime(q)
    window = replace(realtime_query(q), labels=("agent", "bot"))
    agents_now = breakdown(window, "agent")
    result["agents_now"] = [
        {"agent": r["value"], "visitors": r["visitors"], "hits": r["pageviews"] + r["events"]}
        for r in agents_now["rows"]
    ]
    return result
