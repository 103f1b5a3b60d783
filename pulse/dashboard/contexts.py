"""What each dashboard section shows, gathered from the services (templates get plain values)."""

from __future__ import annotations

from typing import Any

from flask import url_for

from pulse.accounts import api_keys
from pulse.accounts.scopes import READ_SCOPES, SCOPES
from pulse.dashboard.forms import initial
from pulse.dashboard.web import actor
from pulse.errors import NotFound
from pulse.extensions import db
from pulse.models import ROLES, ApiKey, Site, Team, User, utcnow
from pulse.sites import service as sites
from pulse.teams import service as teams

ROLE_HELP = {
    "owner": "Everything, including deleting the team",
    "admin": "Everything except deleting the team",
    "member": "Create and edit sites, send events",
    "marketing": "Read reports and leads",
    "viewer": "Read reports only",
}
GRACE_DEFAULT_HOURS = 24
GRACE_MAX_HOURS = 24 * 30


def team_site(team: Team, site_id: int, scope: str = "sites:read") -> Site:
    """A site of this team (another team's id is a 404, like an unknown one)."""
    site = sites.get_site(actor(), site_id, scope)
    if site.team_id != team.id:
        raise NotFound("Site not found.")
    return site


def team_key(team: Team, key_id: int) -> ApiKey:
    """An unrevoked API key of this team."""
    key = api_keys.get_key(actor(), key_id)
    if key.team_id != team.id:
        raise NotFound("API key not found.")
    return key


def teams_context() -> dict[str, Any]:
    """The teams the actor belongs to, with their role in each."""
    me = actor()
    query = teams.list_teams(me).order_by(Team.name, Team.id)
    return {"my_teams": [{"team": t, "role": me.role_in(t.id)} for t in db.session.scalars(query)]}


def team_sites(team: Team) -> list[Site]:
    """The team's sites the actor may see, by name."""
    return list(db.session.scalars(sites.list_sites(actor(), team).order_by(Site.name, Site.id)))


def sites_context(team: Team) -> dict[str, Any]:
    """The sites list page."""
    return {"team": team, "sites": team_sites(team)}


def site_form(site: Site) -> Any:
    """The site settings form filled with the stored values."""
    return initial(
        {
            "name": site.name,
            "domain": site.domain,
            "allowed_origins": "\n".join(site.allowed_origins or []),
            "timezone": site.timezone,
        }
    )


def timezone_choices() -> list[tuple[str, str]]:
    """Every IANA time zone as (value, label) options."""
    return [(name, name.replace("_", " ")) for name in sorted(sites.timezones())]


def site_context(team: Team, site: Site, **keys: Any) -> dict[str, Any]:
    """The site settings page; its API-key section has the keys that can read this site."""
    context: dict[str, Any] = {
        "team": team,
        "site": site,
        "snippet": sites.tracking_snippet(site),
        "timezones": timezone_choices(),
    }
    if actor().can(team, "api-keys:read"):
        context.update(keys_context(team, site, **keys))
    return context


def key_status(key: ApiKey) -> tuple[str, str]:
    """(label, tone) for a key's badge."""
    if key.expires_at is not None and key.expires_at <= utcnow():
        return "expired", "bad"
    until = key.expires_at.strftime("%d %b %Y %H:%M UTC") if key.expires_at else None
    if key.rotated_to_id is not None:
        return f"replaced · works until {until}", "warn"
    if until:
        return f"active · expires {until}", "ok"
    return "active", "ok"


def keys_context(
    team: Team,
    site: Site | None = None,
    *,
    key_form: Any = None,
    key_errors: dict[str, list[str]] | None = None,
    list_errors: dict[str, list[str]] | None = None,
    secret: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The API-key section: the list, the create form (scopes you hold) and a secret shown once."""
    me = actor()
    keys = sorted(api_keys.list_keys(me, team), key=lambda k: (k.name.lower(), -k.id))
    if site is not None:
        keys = [k for k in keys if k.site_id in (None, site.id)]
    held = me.scopes_in(team.id) or frozenset()
    default_scopes = sorted(s for s in READ_SCOPES if s in held and s != "audit:read")
    if key_form is None:
        key_form = initial(
            {
                "scopes": default_scopes,
                "site_id": site.id if site else None,
                "grace_period_hours": GRACE_DEFAULT_HOURS,
            }
        )
    return {
        "team": team,
        "site": site,
        "keys": [{"key": k, "status": key_status(k)} for k in keys],
        "scope_choices": [(name, text) for name, text in SCOPES.items() if name in held],
        "key_sites": team_sites(team) if me.can(team, "sites:read") else [],
        "key_form": key_form,
        "key_errors": key_errors or {},
        "list_errors": list_errors or {},
        "secret": secret,
        "grace_max": GRACE_MAX_HOURS,
        "keys_url": url_for("dashboard.api_keys", team=team.slug, site=site.id if site else None),
    }


def grantable_roles(team: Team) -> list[str]:
    """Roles the actor may hand out: only an owner makes owners."""
    mine = actor().role_in(team.id)
    return [r for r in ROLES if r != "owner" or mine == "owner"]


def members_context(team: Team, invite_link: str | None = None) -> dict[str, Any]:
    """The members page: members, pending invitations, roles the actor may give."""
    me = actor()
    query = teams.list_members(me, team).order_by(User.email)
    return {
        "team": team,
        "memberships": list(db.session.scalars(query)),
        "invitations": teams.list_invitations(me, team),
        "roles": grantable_roles(team),
        "role_help": ROLE_HELP,
        "my_user_id": me.user_id,
        "invite_link": invite_link,
    }


def confirm_context(
    *,
    title: str,
    message: str,
    action: str,
    button: str,
    cancel_url: str,
    target: str,
    cancel_hx: str | None = None,
    cancel_target: str | None = None,
    require_text: str | None = None,
    hidden: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A confirmation step: a page without JS, an inline box with htmx.

    `target` is where htmx puts the answer to the POST; `cancel_target` where the
    section fetched from `cancel_hx` goes back (without `cancel_hx`, Cancel reloads the page).
    """
    return {
        "confirm": {
            "title": title,
            "message": message,
            "action": action,
            "button": button,
            "cancel_url": cancel_url,
            "cancel_hx": cancel_hx,
            "target": target,
            "cancel_target": cancel_target or target,
            "require_text": require_text,
            "hidden": hidden or {},
        }
    }
