"""`accept(rows, admission)`: count a tracking request against its limits, store its rows.

With a durable Redis (one that appends to its AOF), a request far from its limits is
spooled by this process and shipped to the buffer within SHIP_INTERVAL (spool.py);
otherwise the per-IP limit, the site's budget and the push onto the ingest buffer are
one Lua script, one round trip. A drainer stores the rows in bulk (buffer.py).
Without a durable Redis the rows are written to the database in the request
(store.write), after the limits were counted in Redis or in memory. When Redis does
not answer, the rows are written directly rather than lost.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import hiredis
import orjson
from flask import current_app
from redis.commands.core import Script
from redis.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from pulse.errors import PulseError
from pulse.ingest import buffer, limits, spool, store

log = logging.getLogger(__name__)
_scripts: dict[str, Script] = {}
_held = threading.local()  # this thread's Redis connection for the admit script


def _admit_script(url: str) -> Script:
    script = _scripts.get(url)
    if script is None:
        script = _scripts[url] = buffer.connection(url).register_script(limits.ADMIT_LUA)
    return script


def _held_connection(url: str) -> AbstractConnection:
    """A connection this thread keeps out of the pool, made again after a fork."""
    held = getattr(_held, "by_url", None)
    if held is None or held[0] != os.getpid():
        held = _held.by_url = (os.getpid(), {})
    conns: dict[str, AbstractConnection] = held[1]
    conn = conns.get(url)
    if conn is None:
        conn = conns[url] = buffer.connection(url).connection_pool.make_connection()
    return conn


def admit(url: str, keys: list[str], args: list[Any]) -> list[int]:
    """Run the admit script: one EVALSHA on a held connection.

    The hottest call of the product. redis-py's `Script.__call__` costs about three times
    the round trip itself in Python (pool checkout with a readiness poll, retry wrapper,
    argument packing), so the command is packed by hiredis and sent on a connection this
    thread holds. A broken connection is reconnected once; running the script twice is
    harmless, as buffered events are written idempotently on their ids.
    """
    script = _admit_script(url)
    command = ("EVALSHA", script.sha, len(keys), *keys, *args)
    for attempt in (1, 2):
        conn = _held_connection(url)
        try:
            conn.send_packed_command([hiredis.pack_command(command)], check_health=False)
            return conn.read_response()
        except NoScriptError:
            buffer.connection(url).script_load(limits.ADMIT_LUA)
        except (RedisConnectionError, OSError):
            conn.disconnect()
            if attempt == 2:
                raise
    raise RedisError("the admit script could not be loaded")


def _default(value: Any) -> Any:
    raise TypeError(f"cannot buffer {type(value).__name__}")


def accept(rows: list[dict[str, Any]], admission: limits.Admission) -> str:
    """Raise the 429 of a breached limit, else store `rows`: "buffered" or "stored"."""
    config = current_app.config
    url = config.get("REDIS_URL")
    limited = limits.enabled()
    if url:
        try:
            durable = bool(rows) and (
                not config.get("INGEST_BUFFER_REQUIRE_AOF", True) or buffer.persists(url)
            )
            if limited or durable:
                ip_key, site_key = limits.redis_keys(admission) if limited else ("", "")
                ip_limit = limits.PER_IP[admission.kind]
                budget = limits.site_budget(admission.tier)
                payload = orjson.dumps(rows, default=_default) if durable else b""
                outbox = spool.for_process(config, url) if durable else None
                if outbox is not None and outbox.take(
                    ip_key, ip_limit, site_key, budget, admission.events, payload
                ):
                    return "buffered"
                unshipped = outbox.claim(ip_key, site_key) if outbox else [0, 0]
                which, ttl, hits, used = admit(
                    url,
                    [ip_key, site_key, buffer.QUEUE if durable else ""],
                    [ip_limit, budget, admission.events, limits.WINDOW, payload, *unshipped],
                )
                if outbox is not None:
                    outbox.learn({ip_key: hits, site_key: used})
                if which:
                    raise limits.over_limit(int(which), int(ttl), admission)
                if durable:
                    return "buffered"
        except RedisError:
            log.warning(
                "Redis unavailable: limits not counted, %d events written directly", len(rows)
            )
    elif limited:
        limits.check_in_memory(admission)
    if rows:
        store.write(rows)
    return "stored"


def count_rejected(kind: str, ip: str) -> PulseError | None:
    """Count a request that failed before it was admitted (bad body, unknown key, ...).

    Abusive clients are limited per IP even when every request they send is invalid;
    returns the 429 to answer instead once they are over the limit.
    """
    if not limits.enabled() or limits.whitelisted(ip):
        return None
    admission = limits.Admission(kind=kind, ip=ip, ip_exempt=False)
    url = current_app.config.get("REDIS_URL")
    try:
        if url:
            ip_key, _ = limits.redis_keys(admission)
            which, ttl, *_ = admit(
                url, [ip_key, "", ""], [limits.PER_IP[kind], 0, 0, limits.WINDOW, b""]
            )
            return limits.over_limit(int(which), int(ttl), admission) if which else None
        limits.check_in_memory(admission)
    except PulseError as exc:
        return exc
    except RedisError:
        log.warning("Redis unavailable: a rejected tracking request was not counted")
    return None
