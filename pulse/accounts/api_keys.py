"""API keys: issue, authenticate, rotate with a grace period, revoke.

The secret is `sk_live_` + 40 random characters. Only its SHA-256 is stored (the
secret has 238 bits of entropy, so a slow hash adds nothing); the first 16
characters are kept as a visible prefix for lists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select

from pulse.accounts import audit
from pulse.accounts.actor import Actor
from pulse.accounts.scopes import READ_SCOPES, normalise_scopes
from pulse.errors import Forbidden, NotFound, ValidationFailed
from pulse.extensions import db
from pulse.models import TIERS, ApiKey, Site, Team, utcnow

KEY_PREFIX = "sk_live_"
PREFIX_LENGTH = 16
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(30)


def authenticate(secret: str) -> ApiKey | None:
    """The usable key with this secret, or None; refreshes last_used_at once a minute."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 128:
        return None
    digest = hash_key(secret)
    key = db.session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if key is None or not hmac.compare_digest(key.key_hash, digest) or not key.is_usable():
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
    return key


def list_keys(actor: Actor, team: Team) -> list[ApiKey]:
    actor.require(team, "api-keys:read", missing="Team")
    return list(
        db.session.scalars(
            select(ApiKey)
            .where(ApiKey.team_id == team.id, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.id)
        )
    )


def get_key(actor: Actor, key_id: int) -> ApiKey:
    key = db.session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        raise NotFound("API key not found.")
    actor.require(key.team_id, "api-keys:read", missing="API key")
    return key


def _granted_scopes(actor: Actor, team: Team, requested: list[str] | None) -> list[str]:
    """The scopes asked for, which must all be within the creator's own."""
    scopes = normalise_scopes(requested) if requested is not None else sorted(READ_SCOPES)
    if not scopes:
        raise ValidationFailed(errors={"scopes": ["At least one scope is required."]})
    held = actor.scopes_in(team.id) or frozenset()
    beyond = [s for s in scopes if s not in held]
    if beyond:
        raise Forbidden(
            "You cannot grant scopes you do not hold: " + ", ".join(beyond),
            extra={"required_scope": beyond[0]},
        )
    return scopes


def create_key(
    actor: Actor,
    team: Team,
    *,
    name: str,
    scopes: list[str] | None = None,
    site_id: int | None = None,
    expires_at: datetime | None = None,
    rate_limit_tier: str | None = None,
) -> tuple[ApiKey, str]:
    """Issue a key; the secret is returned here and never again."""
    actor.require(team, "api-keys:write", missing="Team")
    if site_id is not None:
        site = db.session.get(Site, site_id)
        if site is None or site.team_id != team.id:
            raise ValidationFailed(errors={"site_id": ["No such site in this team."]})
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed(errors={"expires_at": ["The expiry must be in the future."]})
    if rate_limit_tier is not None and rate_limit_tier not in TIERS:
        raise ValidationFailed(errors={"rate_limit_tier": [f"One of: {', '.join(TIERS)}"]})
    secret = new_secret()
    key = ApiKey(
        team_id=team.id,
        site_id=site_id,
        created_by_id=actor.user_id,
        name=name,
        prefix=secret[:PREFIX_LENGTH],
        key_hash=hash_key(secret),
        scopes=_granted_scopes(actor, team, scopes),
        expires_at=expires_at,
        rate_limit_tier=rate_limit_tier,
    )
    db.session.add(key)
    db.session.flush()
    audit.record(actor, "api_key.created", team_id=team.id, target=key, details={"name": name})
    return key, secret


def rotate_key(actor: Actor, key: ApiKey, grace_period_hours: int = 24) -> tuple[ApiKey, str]:
    """A new key with the same grants; the old one keeps working for the grace period."""
    actor.require(key.team_id, "api-keys:write", missing="API key")
    if key.rotated_to_id is not None:
        raise ValidationFailed(
            "This key was already rotated; rotate its replacement instead.",
            errors={"id": [f"Already replaced by key {key.rotated_to_id}."]},
        )
    secret = new_secret()
    replacement = ApiKey(
        team_id=key.team_id,
        site_id=key.site_id,
        created_by_id=actor.user_id or key.created_by_id,
        name=key.name,
        prefix=secret[:PREFIX_LENGTH],
        key_hash=hash_key(secret),
        scopes=list(key.scopes),
        expires_at=key.expires_at,
        rate_limit_tier=key.rate_limit_tier,
    )
    db.session.add(replacement)
    db.session.flush()
    grace_end = utcnow() + timedelta(hours=grace_period_hours)
    key.expires_at = min(key.expires_at, grace_end) if key.expires_at else grace_end
    key.rotated_to_id = replacement.id
    audit.record(
        actor,
        "api_key.rotated",
        team_id=key.team_id,
        target=key,
        details={"replacement_id": replacement.id, "grace_period_hours": grace_period_hours},
    )
    return replacement, secret


def revoke_key(actor: Actor, key: ApiKey) -> None:
    """Stop a key at once."""
    actor.require(key.team_id, "api-keys:delete", missing="API key")
    key.revoked_at = utcnow()
    audit.record(actor, "api_key.revoked", team_id=key.team_id, target=key)
