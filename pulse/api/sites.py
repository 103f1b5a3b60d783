"""Sites (alias: seed 002 projects, seed 000 team-scoped sites)."""

from __future__ import annotations

from flask import request

from pulse.accounts.actor import Actor
from pulse.api import bp, schemas
from pulse.api import serializers as out
from pulse.api.listing import list_params, paginate
from pulse.api.routing import operation
from pulse.errors import BadRequest, NotFound
from pulse.extensions import db
from pulse.models import Site, Team
from pulse.sites import service
from pulse.teams.service import get_team

SORTABLE = ("id", "name", "domain", "created_at", "updated_at")


def team_for(actor: Actor, ident: str | None, scope: str) -> Team:
    """The team a team-less route means: explicit, the key's, or the user's only team."""
    ident = ident or request.headers.get("X-Workspace-ID") or request.args.get("team")
    if ident:
        return get_team(actor, str(ident), scope=scope)
    if actor.api_key is not None:
        return get_team(actor, str(actor.api_key.team_id), scope=scope)
    ids = actor.team_ids()
    if len(ids) == 1:
        return get_team(actor, str(ids[0]), scope=scope)
    raise BadRequest(
        "Say which team: a `team` field, ?team=, or the X-Workspace-ID header.",
        code="team_required",
        errors={"team": ["Required when you belong to several teams."]},
    )


@operation(
    bp,
    "/api/v1/teams/<team>/sites",
    summary="List a team's sites",
    tag="sites",
    scope="sites:read",
    aliases=["/api/v1/workspaces/<team>/sites"],
    response=schemas.SiteOut,
    envelope="list",
    errors=(404,),
)
def list_team_sites(actor: Actor, team: str):
    found = get_team(actor, team, scope="sites:read")
    return paginate(service.list_sites(actor, found), Site, list_params(SORTABLE), out.site)


@operation(
    bp,
    "/api/v1/projects",
    summary="List sites of every team you can reach",
    tag="sites",
    scope="sites:read",
    response=schemas.SiteOut,
    envelope="list",
)
def list_projects(actor: Actor):
    """Seed 002's projects: all sites visible to the caller."""
    query = db.select(Site).where(Site.team_id.in_(actor.team_ids()))
    if actor.api_key is not None and actor.api_key.site_id is not None:
        query = query.where(Site.id == actor.api_key.site_id)
    return paginate(query, Site, list_params(SORTABLE), out.site)


@operation(
    bp,
    "/api/v1/teams/<team>/sites",
    methods=["POST"],
    summary="Create a site",
    tag="sites",
    scope="sites:write",
    aliases=["/api/v1/workspaces/<team>/sites"],
    body=schemas.SiteIn,
    response=schemas.SiteOut,
    status=201,
    errors=(404, 409, 422),
)
def create_team_site(actor: Actor, team: str, body: schemas.SiteIn):
    found = get_team(actor, team, scope="sites:write")
    site = service.create_site(
        actor,
        found,
        name=body.name,
        domain=body.domain,
        allowed_origins=body.allowed_origins,
        timezone=body.timezone,
    )
    return out.envelope(out.site(site), "Site created successfully.")


@operation(
    bp,
    "/api/v1/projects",
    methods=["POST"],
    summary="Create a project (site)",
    tag="sites",
    scope="sites:write",
    body=schemas.SiteIn,
    response=schemas.SiteOut,
    status=201,
    errors=(409, 422),
)
def create_project(actor: Actor, body: schemas.SiteIn):
    """Seed 002: 201 when new; 200 with `existing: true` when the name is already a site."""
    team = team_for(actor, body.team, "sites:write")
    existing = service.find_by_name(team, body.name)
    if existing is not None:
        actor.require_site(existing, "sites:read")
        return {**out.envelope(out.site(existing)), "existing": True}, 200
    site = service.create_site(
        actor,
        team,
        name=body.name,
        domain=body.domain,
        allowed_origins=body.allowed_origins,
        timezone=body.timezone,
    )
    return {**out.envelope(out.site(site), "Project created."), "existing": False}, 201


SITE_ALIASES = ["/api/v1/projects/<id:site_id>"]


@operation(
    bp,
    "/api/v1/sites/<id:site_id>",
    summary="Get a site",
    tag="sites",
    scope="sites:read",
    aliases=SITE_ALIASES,
    response=schemas.SiteOut,
    errors=(404,),
)
def get_site(actor: Actor, site_id: int):
    return out.envelope(out.site(service.get_site(actor, site_id)))


@operation(
    bp,
    "/api/v1/teams/<team>/sites/<id:site_id>",
    summary="Get a team's site",
    tag="sites",
    scope="sites:read",
    response=schemas.SiteOut,
    errors=(404,),
)
def get_team_site(actor: Actor, team: str, site_id: int):
    found = get_team(actor, team, scope="sites:read")
    site = service.get_site(actor, site_id)
    if site.team_id != found.id:
        raise NotFound("Site not found.")
    return out.envelope(out.site(site))


@operation(
    bp,
    "/api/v1/sites/<id:site_id>",
    methods=["PATCH", "PUT"],
    summary="Update a site",
    tag="sites",
    scope="sites:write",
    aliases=SITE_ALIASES,
    body=schemas.SitePatch,
    response=schemas.SiteOut,
    errors=(404, 409, 422),
)
def update_site(actor: Actor, site_id: int, body: schemas.SitePatch):
    site = service.get_site(actor, site_id, scope="sites:write")
    service.update_site(actor, site, body.model_dump(exclude_unset=True, exclude_none=True))
    return out.envelope(out.site(site), "Site updated successfully.")


@operation(
    bp,
    "/api/v1/sites/<id:site_id>",
    methods=["DELETE"],
    summary="Delete a site",
    tag="sites",
    scope="sites:delete",
    aliases=SITE_ALIASES,
    envelope="none",
    status=204,
    errors=(404,),
)
def delete_site(actor: Actor, site_id: int):
    service.delete_site(actor, service.get_site(actor, site_id, scope="sites:delete"))
