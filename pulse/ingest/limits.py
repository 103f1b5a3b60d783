"""Tracking limits: per-IP limits of seed 001 and per-site event budgets by tier.

With Redis, the limits and the buffer push are one Lua script: a tracking request
costs one round trip, and a request over a limit is never buffered. Fixed windows
of one minute, counted in Redis (shared by all workers) or, without Redis, in the
process's memory through Flask-Limiter's storage.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from functools import lru_cache

from flask import current_app
from limits import parse
from redis.exceptions import RedisError

from pulse.errors import PulseError
from pulse.extensions import limiter
from pulse.net import ipv4_value

log = logging.getLogger(__name__)
WINDOW = 60  # seconds
PER_IP = {"session": 10, "event": 120, "batch": 30, "pixel": 300}
# Events a site may send per minute, by its team's tier.
SITE_EVENTS_PER_MINUTE = {
    "free": 2_000,
    "starter": 20_000,
    "pro": 100_000,
    "agency": 400_000,
    "enterprise": 2_000_000,
}

# KEYS: per-IP counter ("" when exempt), site counter ("" for none), queue ("" for none).
# ARGV: per-IP limit, site limit, events, window seconds, payload, then what this
# process counted on the two counters without shipping it yet (spool.py; 0 without).
# Returns {0, 0, hits, used} when admitted (and pushed), {1, ttl, hits, used} over the
# IP limit, {2, ttl, hits, used} over the site's budget; hits and used are the
# counters' totals (0 for a counter not asked for).
ADMIT_LUA = """
local window = tonumber(ARGV[4])
local hits, used = 0, 0
if KEYS[1] ~= "" then
  local cost = 1 + tonumber(ARGV[6] or "0")
  hits = redis.call("INCRBY", KEYS[1], cost)
  if hits == cost then redis.call("EXPIRE", KEYS[1], window) end
  if hits > tonumber(ARGV[1]) then return {1, redis.call("TTL", KEYS[1]), hits, used} end
end
if KEYS[2] ~= "" then
  local cost = tonumber(ARGV[3]) + tonumber(ARGV[7] or "0")
  used = redis.call("INCRBY", KEYS[2], cost)
  if used == cost then redis.call("EXPIRE", KEYS[2], window) end
  if used > tonumber(ARGV[2]) then return {2, redis.call("TTL", KEYS[2]), hits, used} end
end
if KEYS[3] ~= "" then redis.call("RPUSH", KEYS[3], ARGV[5]) end
return {0, 0, hits, used}
"""


@dataclass(frozen=True)
class Admission:
    """Who is counted for one tracking request."""

    kind: str  # key of PER_IP
    ip: str
    ip_exempt: bool  # whitelisted IP, or a server with an events:write key
    site_id: int | None = None
    tier: str = "free"
    events: int = 0


def site_budget(tier: str) -> int:
    return SITE_EVENTS_PER_MINUTE.get(tier, SITE_EVENTS_PER_MINUTE["free"])


@dataclass(frozen=True)
class _Whitelist:
    """INGEST_IP_WHITELIST as integer ranges: IPv4 is checked without ipaddress objects."""

    v4: tuple[tuple[int, int], ...]
    v6: tuple[ipaddress.IPv6Network, ...]


@lru_cache(maxsize=64)
def _whitelist(entries: tuple[str, ...]) -> _Whitelist:
    networks = [ipaddress.ip_network(n, strict=False) for n in entries]
    return _Whitelist(
        v4=tuple(
            (int(n.network_address), int(n.broadcast_address))
            for n in networks
            if isinstance(n, ipaddress.IPv4Network)
        ),
        v6=tuple(n for n in networks if isinstance(n, ipaddress.IPv6Network)),
    )


def whitelisted(ip: str) -> bool:
    """IPs (or networks) in INGEST_IP_WHITELIST skip the per-IP limits (seed 001)."""
    entries = current_app.config.get("INGEST_IP_WHITELIST") or ()
    if not entries:
        return False
    allowed = _whitelist(tuple(entries))
    if ":" not in ip:
        value = ipv4_value(ip)
        return value is not None and any(start <= value <= end for start, end in allowed.v4)
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return whitelisted(str(address.ipv4_mapped))
    return any(address in network for network in allowed.v6)


def enabled() -> bool:
    return bool(current_app.config.get("RATELIMIT_ENABLED", True))


def _window() -> int:
    return int(time.time()) // WINDOW


def redis_keys(admission: Admission) -> tuple[str, str]:
    window = _window()
    ip_key = "" if admission.ip_exempt else f"pulse:trk:ip:{admission.kind}:{admission.ip}:{window}"
    site_key = (
        f"pulse:trk:site:{admission.site_id}:{window}"
        if admission.site_id is not None and admission.events > 0
        else ""
    )
    return ip_key, site_key


def over_limit(which: int, ttl: int, admission: Admission) -> PulseError:
    """The 429 of seed 001, with Retry-After and the X-RateLimit headers."""
    retry_after = max(1, int(ttl) if ttl and ttl > 0 else WINDOW)
    if which == 1:
        limit = PER_IP[admission.kind]
        message = f"Too many requests. Please retry after {retry_after} seconds."
    else:
        limit = site_budget(admission.tier)
        message = f"This site sent more than {limit} events in a minute."
    reset = int(time.time()) + retry_after
    return PulseError(
        message,
        code="rate_limit_exceeded",
        status=429,
        extra={"retry_after": retry_after, "limit": limit, "remaining": 0},
        headers={
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(reset),
        },
    )


def check_in_memory(admission: Admission) -> None:
    """Without Redis: the same limits in Flask-Limiter's (in-process) storage."""
    strategy = limiter.limiter
    try:
        if not admission.ip_exempt:
            item = parse(f"{PER_IP[admission.kind]}/minute")
            if not strategy.hit(item, "trk-ip", admission.kind, admission.ip):
                stats = strategy.get_window_stats(item, "trk-ip", admission.kind, admission.ip)
                raise over_limit(1, int(stats.reset_time - time.time()), admission)
        if admission.site_id is not None and admission.events > 0:
            item = parse(f"{site_budget(admission.tier)}/minute")
            site = str(admission.site_id)
            if not strategy.hit(item, "trk-site", site, cost=admission.events):
                stats = strategy.get_window_stats(item, "trk-site", site)
                raise over_limit(2, int(stats.reset_time - time.time()), admission)
    except (RedisError, OSError):
        log.warning("rate-limit storage unavailable: tracking limits not enforced")
