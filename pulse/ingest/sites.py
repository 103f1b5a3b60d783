"""Who may send events for which site: browsers by site key + Origin, servers by API key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from pulse.accounts import api_keys
from pulse.errors import Forbidden, NotFound, Unauthorized
from pulse.extensions import db
from pulse.models import ApiKey, Site


@dataclass(frozen=True)
class SiteFacts:
    """What the hot path needs of a site, cached briefly in process memory."""

    site_id: int
    team_id: int
    tier: str
    timezone: str
    domain: str
    allowed_origins: tuple[str, ...]
    site_key: str


CACHE_SECONDS = 30.0
_cache: dict[str, tuple[float, SiteFacts | None]] = {}


def clear_cache() -> None:
    _cache.clear()


def _facts(site: Site) -> SiteFacts:
    return SiteFacts(
        site.id,
        site.team_id,
        site.team.tier,
        site.timezone,
        site.domain,
        tuple(o.lower() for o in site.allowed_origins or ()),
        site.site_key,
    )


def site_facts(site_key: str) -> SiteFacts | None:
    """The site with this public key; one query per key every 30 seconds at most."""
    now = time.monotonic()
    hit = _cache.get(site_key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    site = db.session.scalar(select(Site).where(Site.site_key == site_key[:64]))
    facts = _facts(site) if site is not None else None
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[site_key] = (now, facts)
    return facts


@dataclass(frozen=True)
class Sender:
    """The site events go to, and whether a trusted server sent them."""

    site_id: int
    team_id: int
    tier: str
    timezone: str
    server: bool  # an API key with events:write: may set timestamp, ip and user_agent


def _origin_allowed(site: SiteFacts, origin: str) -> bool:
    parts = urlsplit(origin)
    normalised = f"{parts.scheme}://{parts.netloc}".lower()
    allowed = site.allowed_origins
    if normalised in allowed:
        return True
    # With no list, the site's own domain and its subdomains, over https or http.
    host = (parts.hostname or "").lower()
    return not allowed and (host == site.domain or host.endswith("." + site.domain))


def _sender(site: SiteFacts, server: bool) -> Sender:
    return Sender(site.site_id, site.team_id, site.tier, site.timezone, server)


def resolve_sender(site_ref: str | None, origin: str | None, secret: str | None) -> Sender:
    """Authenticate a tracking request; 401/403/404 in the seed's error shape.

    `secret` is the API key of the request's headers, if any.
    """
    if secret is None and site_ref and site_ref.startswith(api_keys.KEY_PREFIX):
        secret = site_ref  # the pixel's `k` may be an API key (seed 000)
        site_ref = None
    if secret is not None:
        key = api_keys.authenticate(secret)
        if key is None:
            raise Unauthorized("Invalid or missing API key.")
        if "events:write" not in key.scopes:
            raise Forbidden(
                "Insufficient permissions. Required scope: events:write",
                extra={"required_scope": "events:write"},
            )
        return _sender(_facts(_site_for_key(key, site_ref)), server=True)
    if not site_ref:
        raise Unauthorized("Send the site key (`site`) or an API key.", code="missing_site_key")
    site = site_facts(site_ref)
    if site is None:
        raise NotFound("Unknown site key.", code="unknown_site")
    if origin and not _origin_allowed(site, origin):
        raise Forbidden("This origin may not send events for this site.", code="origin_not_allowed")
    return _sender(site, server=False)


def _site_for_key(key: ApiKey, site_ref: str | None) -> Site:
    if key.site_id is not None:
        site = db.session.get(Site, key.site_id)
        if site_ref and site_ref not in (site.site_key, str(site.id)):
            raise NotFound("Site not found.")
        return site
    if not site_ref:
        raise Unauthorized("Say which site: `site` (site key or id).", code="missing_site_key")
    query = select(Site).where(Site.team_id == key.team_id)
    if site_ref.isdigit() and len(site_ref) < 10:
        site = db.session.scalar(query.where(Site.id == int(site_ref)))
    else:
        site = db.session.scalar(query.where(Site.site_key == site_ref[:64]))
    if site is None:
        raise NotFound("Site not found.")
    return site
