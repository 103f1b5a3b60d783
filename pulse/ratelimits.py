"""Rate limits: per-tier API limits (seed 004) and sign-in limits per IP and per account."""

from __future__ import annotations

import hashlib

from flask import request

from pulse.accounts.auth import current_actor
from pulse.net import client_address

TIER_LIMITS = {
    "free": "60/minute",
    "starter": "1000/minute",
    "pro": "5000/minute",
    "agency": "20000/minute",
    "enterprise": "100000/minute",
}
SESSION_LIMIT = "600/minute"
ANONYMOUS_LIMIT = "60/minute"
SIGN_IN_PER_IP = "20/minute"
SIGN_IN_PER_ACCOUNT = "5/minute"


def api_limit() -> str:
    """The limit for the caller: its key's tier, else its team's tier."""
    actor = current_actor()
    if actor is None:
        return ANONYMOUS_LIMIT
    if actor.api_key is not None:
        tier = actor.api_key.rate_limit_tier or actor.api_key.team.tier
        return TIER_LIMITS.get(tier, TIER_LIMITS["free"])
    return SESSION_LIMIT


def api_limit_key() -> str:
    actor = current_actor()
    return actor.identity if actor is not None else f"ip:{client_address()}"


def signin_account_key() -> str:
    """Per-account bucket: a hash of the email tried, so none is stored in Redis."""
    data = request.get_json(silent=True) if request.is_json else None
    email = ""
    if isinstance(data, dict) and isinstance(data.get("email"), str):
        email = data["email"]
    else:
        email = request.form.get("email", "")
    digest = hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()
    return f"signin:{digest[:32]}"
