"""Dashboard routes: this module gathers the view modules and the layout shared by every page."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from pulse.dashboard import (  # noqa: F401  (routes)
    accounts,
    analytics,
    bp,
    explore,
    keys,
    members,
    sites,
    teams,
)
from pulse.dashboard.web import actor
from pulse.extensions import db
from pulse.models import Team
from pulse.teams import service as team_service

# (endpoint, label, scope needed to see it)
NAV_LINKS = (
    ("dashboard.sites", "Sites", "sites:read"),
    ("dashboard.api_keys", "API keys", "api-keys:read"),
    ("dashboard.members", "Members", "members:read"),
    ("dashboard.team_settings", "Team settings", "teams:read"),
)
SECTIONS = {
    "dashboard.sites": "dashboard.sites",
    "dashboard.new_site": "dashboard.sites",
    "dashboard.site_settings": "dashboard.sites",
    "dashboard.delete_site": "dashboard.sites",
    "dashboard.site_overview": "dashboard.sites",
    "dashboard.site_realtime": "dashboard.sites",
    "dashboard.site_agents": "dashboard.sites",
    "dashboard.site_sessions": "dashboard.sites",
    "dashboard.site_events": "dashboard.sites",
    "dashboard.session_timeline": "dashboard.sites",
    "dashboard.site_funnels": "dashboard.sites",
    "dashboard.site_retention": "dashboard.sites",
    "dashboard.site_heatmap": "dashboard.sites",
    "dashboard.api_keys": "dashboard.api_keys",
    "dashboard.revoke_key": "dashboard.api_keys",
    "dashboard.members": "dashboard.members",
    "dashboard.remove_member": "dashboard.members",
    "dashboard.team_settings": "dashboard.team_settings",
    "dashboard.delete_team": "dashboard.team_settings",
}


def dashboard_layout() -> dict[str, Any]:
    """What base.html shows around every page: the user, their teams, the current team's nav."""
    layout: dict[str, Any] = {"user": None, "teams": [], "team": None, "links": [], "section": None}
    if not current_user.is_authenticated:
        return layout
    layout["user"] = current_user
    me = actor()
    try:
        query = team_service.list_teams(me).order_by(Team.name, Team.id)
        layout["teams"] = [{"team": t, "role": me.role_in(t.id)} for t in db.session.scalars(query)]
    except SQLAlchemyError:  # the error page must still render when the database is down
        db.session.rollback()
        return layout
    team = g.get("team")
    if team is not None:
        layout["team"] = team
        layout["links"] = [link for link in NAV_LINKS if me.can(team, link[2])]
        layout["section"] = SECTIONS.get(request.endpoint or "")
    return layout


@bp.before_app_request
def forget_request_state() -> None:
    """The actor and current team belong to one request (an app context can outlive it)."""
    g.pop("dashboard_actor", None)
    g.pop("team", None)


@bp.app_context_processor
def layout_helpers() -> dict[str, Any]:
    """`dashboard_layout()` for base.html; `can(scope)` and `my_role()` for the current team."""

    def can(scope: str, team: Team | None = None) -> bool:
        team = team or g.get("team")
        return bool(current_user.is_authenticated and team is not None and actor().can(team, scope))

    def my_role(team: Team | None = None) -> str | None:
        team = team or g.get("team")
        if not current_user.is_authenticated or team is None:
            return None
        return actor().role_in(team.id)

    return {"dashboard_layout": dashboard_layout, "can": can, "my_role": my_role}


@bp.after_request
def vary_on_htmx(response: Response) -> Response:
    """Pages and partials share URLs, so caches must key on the HX-Request header."""
    response.vary.add("HX-Request")
    if current_user.is_authenticated:
        response.headers.setdefault("Cache-Control", "private, no-cache")
    return response
