"""Tracking limits: per-IP limits of seed 001 and per-site event budgets by tier."""

from __future__ import annotations

import ipaddress
import logging

from flask import current_app
from limits import parse
from redis.exceptions import RedisError

from pulse.accounts import api_keys
from pulse.accounts.auth import presented_key
from pulse.errors import PulseError
from pulse.extensions import limiter
from pulse.ingest.sites import Sender
from pulse.net import client_address

log = logging.getLogger(__name__)
PER_IP = {"session": "10/minute", "event": "120/minute", "batch": "30/minute"}
# Events a site may send per minute, by its team's tier.
SITE_EVENTS_PER_MINUTE = {
    "free": 2_000,
    "starter": 20_000,
    "pro": 100_000,
    "agency": 400_000,
    "enterprise": 2_000_000,
}


def per_ip(kind: str) -> str:
    return PER_IP[kind]


def whitelisted() -> bool:
    """IPs (or networks) in INGEST_IP_WHITELIST skip the per-IP limits (seed 001)."""
    networks = current_app.config.get("INGEST_IP_WHITELIST") or ()
    if not networks:
        return False
    try:
        address = ipaddress.ip_address(client_address())
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


def exempt() -> bool:
    """Skip per-IP limits for whitelisted IPs and for servers with an events:write key.

    One app server forwards every visitor's hits from a single IP, so an IP limit
    would throttle it; its per-site budget still applies.
    """
    if whitelisted():
        return True
    secret = presented_key()
    if not secret:
        return False
    key = api_keys.authenticate(secret)
    return key is not None and "events:write" in key.scopes


def check_site(sender: Sender, events: int) -> None:
    """Count `events` against the site's budget; 429 in the seed shape when over."""
    if not current_app.config.get("RATELIMIT_ENABLED", True) or events <= 0:
        return
    per_minute = SITE_EVENTS_PER_MINUTE.get(sender.tier, SITE_EVENTS_PER_MINUTE["free"])
    item = parse(f"{per_minute}/minute")
    strategy = limiter.limiter
    try:
        if strategy.hit(item, "site-events", str(sender.site_id), cost=events):
            return
        stats = strategy.get_window_stats(item, "site-events", str(sender.site_id))
    except (RedisError, OSError):
        # The counters live in Redis. Without it, store the events rather than fail.
        log.warning("rate-limit storage unavailable: site budget not enforced")
        return
    import time

    retry_after = max(1, int(stats.reset_time - time.time()))
    raise PulseError(
        f"This site sent more than {per_minute} events in a minute.",
        code="rate_limit_exceeded",
        status=429,
        extra={"retry_after": retry_after, "limit": per_minute, "remaining": 0},
        headers={
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit": str(per_minute),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(stats.reset_time)),
        },
    )
