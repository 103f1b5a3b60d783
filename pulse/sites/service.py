"""Operations on sites, each checked against the acting principal."""

from __future__ import annotations

import contextlib
import re
import secrets
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from flask import current_app
from sqlalchemy import or_, select

from pulse.accounts import audit
from pulse.accounts.actor import Actor
from pulse.analytics import rollups
from pulse.errors import Conflict, NotFound, ValidationFailed
from pulse.extensions import db
from pulse.models import Site, Team

HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
MAX_ORIGINS = 50


@lru_cache(maxsize=1)
def timezones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def normalise_domain(value: str) -> str:
    """`https://www.Example.com/path` and `example.com.` both give a bare host name."""
    text = value.strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.split("/")[0].split(":")[0].rstrip(".")
    with contextlib.suppress(UnicodeError):
        text = text.encode("idna").decode("ascii")
    if not HOSTNAME.match(text):
        raise ValidationFailed(errors={"domain": ["Give a host name such as example.com."]})
    return text


def normalise_origin(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed(
            errors={"allowed_origins": [f"Not an origin (scheme://host[:port]): {value[:100]}"]}
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise ValidationFailed(errors={"allowed_origins": [f"Bad port in {value[:100]}"]}) from exc
    origin = f"{parts.scheme}://{parts.hostname.lower()}"
    return origin if port is None else f"{origin}:{port}"


def _origins(values: list[str]) -> list[str]:
    if len(values) > MAX_ORIGINS:
        raise ValidationFailed(errors={"allowed_origins": [f"At most {MAX_ORIGINS} origins."]})
    return sorted({normalise_origin(v) for v in values})


def _timezone(name: str) -> str:
    if name not in timezones():
        raise ValidationFailed(errors={"timezone": ["Use an IANA time zone such as Europe/Paris."]})
    return name


def tracking_snippet(site: Site) -> str:
    """The script tag a site owner pastes into their pages."""
    base = current_app.config["BASE_URL"]
    return f'<script defer src="{base}/pulse.js" data-site="{site.site_key}"></script>'


def list_sites(actor: Actor, team: Team) -> Any:
    """A select of the team's sites visible to the actor (for pagination)."""
    actor.require(team, "sites:read", missing="Team")
    query = select(Site).where(Site.team_id == team.id)
    if actor.api_key is not None and actor.api_key.site_id is not None:
        query = query.where(Site.id == actor.api_key.site_id)
    return query


def get_site(actor: Actor, site_id: int, scope: str = "sites:read") -> Site:
    site = db.session.get(Site, site_id)
    if site is None:
        raise NotFound("Site not found.")
    actor.require_site(site, scope)
    return site


def find_site(actor: Actor, ident: str | None, scope: str, field: str = "site") -> Site:
    """A site by id, site key, name or domain among the actor's (for `?site=` parameters).

    Without `ident`: the key's own site, or the only site the actor can see.
    """
    query = select(Site).where(Site.team_id.in_(actor.team_ids()))
    if actor.api_key is not None and actor.api_key.site_id is not None:
        query = query.where(Site.id == actor.api_key.site_id)
    if ident:
        ident = ident.strip()[:255]
        matches = [Site.site_key == ident, Site.name == ident, Site.domain == ident.lower()]
        if ident.isdigit() and len(ident) < 10:
            matches.append(Site.id == int(ident))
        query = query.where(or_(*matches))
    found = list(db.session.scalars(query.order_by(Site.id).limit(2)))
    if not found:
        if ident:
            raise NotFound("Site not found.")
        raise ValidationFailed(errors={field: ["Say which site: ?site=<id, key, name or domain>."]})
    if len(found) > 1:
        message = "Several sites match; use the id." if ident else "Required: you have several."
        raise ValidationFailed(errors={field: [message]})
    actor.require_site(found[0], scope)
    return found[0]


def find_by_name(team: Team, name: str) -> Site | None:
    return db.session.scalar(select(Site).where(Site.team_id == team.id, Site.name == name))


def create_site(
    actor: Actor,
    team: Team,
    *,
    name: str,
    domain: str | None = None,
    allowed_origins: list[str] | None = None,
    timezone: str = "UTC",
) -> Site:
    """A new site with a fresh public site key."""
    actor.require(team, "sites:write", missing="Team")
    if domain is None:
        guess = allowed_origins[0] if allowed_origins else name
        try:
            domain = normalise_domain(guess)
        except ValidationFailed as exc:
            raise ValidationFailed(errors={"domain": ["The domain is required."]}) from exc
    else:
        domain = normalise_domain(domain)
    if db.session.scalar(select(Site.id).where(Site.team_id == team.id, Site.domain == domain)):
        raise Conflict(f"This team already has a site for {domain}.", code="site_exists")
    site = Site(
        team_id=team.id,
        name=name,
        domain=domain,
        allowed_origins=_origins(allowed_origins) if allowed_origins else [f"https://{domain}"],
        timezone=_timezone(timezone),
        site_key="ps_" + secrets.token_urlsafe(18),
    )
    db.session.add(site)
    db.session.flush()
    audit.record(actor, "site.created", team_id=team.id, target=site, details={"domain": domain})
    return site


def update_site(actor: Actor, site: Site, changes: dict[str, Any]) -> Site:
    actor.require_site(site, "sites:write")
    if "name" in changes:
        site.name = changes["name"]
    if "domain" in changes:
        domain = normalise_domain(changes["domain"])
        clash = db.session.scalar(
            select(Site.id).where(
                Site.team_id == site.team_id, Site.domain == domain, Site.id != site.id
            )
        )
        if clash:
            raise Conflict(f"This team already has a site for {domain}.", code="site_exists")
        site.domain = domain
    if "allowed_origins" in changes:
        site.allowed_origins = _origins(changes["allowed_origins"] or [])
    if "timezone" in changes:
        timezone = _timezone(changes["timezone"])
        if timezone != site.timezone:
            rollups.zone_changed(site.id)
        site.timezone = timezone
    audit.record(
        actor,
        "site.updated",
        team_id=site.team_id,
        target=site,
        details={k: v for k, v in changes.items() if k != "allowed_origins"},
    )
    return site


def delete_site(actor: Actor, site: Site) -> None:
    actor.require_site(site, "sites:delete")
    audit.record(
        actor, "site.deleted", team_id=site.team_id, target=site, details={"domain": site.domain}
    )
    db.session.delete(site)
