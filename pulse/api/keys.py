"""API keys (seed 004): created per team, shown once, rotated with a grace period."""

from __future__ import annotations

from pulse.accounts import api_keys
from pulse.accounts.actor import Actor
from pulse.api import bp, schemas
from pulse.api import serializers as out
from pulse.api.routing import operation
from pulse.api.sites import team_for
from pulse.teams.service import get_team


@operation(
    bp,
    "/api/v1/api-keys",
    summary="List API keys",
    tag="api-keys",
    scope="api-keys:read",
    response=schemas.ApiKeyOut,
    envelope="list",
)
def list_keys(actor: Actor):
    team = team_for(actor, None, "api-keys:read")
    return out.envelope([out.api_key(k) for k in api_keys.list_keys(actor, team)])


@operation(
    bp,
    "/api/v1/teams/<team>/api-keys",
    summary="List a team's API keys",
    tag="api-keys",
    scope="api-keys:read",
    response=schemas.ApiKeyOut,
    envelope="list",
    errors=(404,),
)
def list_team_keys(actor: Actor, team: str):
    found = get_team(actor, team, scope="api-keys:read")
    return out.envelope([out.api_key(k) for k in api_keys.list_keys(actor, found)])


def _create(actor: Actor, team_ident: str | None, body: schemas.ApiKeyIn):
    team = team_for(actor, team_ident or body.team, "api-keys:write")
    key, secret = api_keys.create_key(
        actor,
        team,
        name=body.name,
        scopes=body.scopes,
        site_id=body.site_id,
        expires_at=body.expires_at,
        rate_limit_tier=body.rate_limit_tier,
    )
    return out.envelope(out.api_key_created(key, secret), "API key created successfully.")


@operation(
    bp,
    "/api/v1/api-keys",
    methods=["POST"],
    summary="Create an API key",
    tag="api-keys",
    scope="api-keys:write",
    body=schemas.ApiKeyIn,
    response=schemas.ApiKeyCreated,
    status=201,
    errors=(403, 422),
)
def create_key(actor: Actor, body: schemas.ApiKeyIn):
    """The `key` field is returned only here. Scopes cannot exceed the creator's own."""
    return _create(actor, None, body)


@operation(
    bp,
    "/api/v1/teams/<team>/api-keys",
    methods=["POST"],
    summary="Create an API key for a team",
    tag="api-keys",
    scope="api-keys:write",
    body=schemas.ApiKeyIn,
    response=schemas.ApiKeyCreated,
    status=201,
    errors=(403, 404, 422),
)
def create_team_key(actor: Actor, team: str, body: schemas.ApiKeyIn):
    return _create(actor, team, body)


@operation(
    bp,
    "/api/v1/api-keys/<id:key_id>",
    summary="Get an API key",
    tag="api-keys",
    scope="api-keys:read",
    response=schemas.ApiKeyOut,
    errors=(404,),
)
def get_key(actor: Actor, key_id: int):
    return out.envelope(out.api_key(api_keys.get_key(actor, key_id)))


@operation(
    bp,
    "/api/v1/api-keys/<id:key_id>/rotate",
    methods=["POST"],
    summary="Rotate an API key",
    tag="api-keys",
    scope="api-keys:write",
    body=schemas.RotateIn,
    response=schemas.ApiKeyRotated,
    errors=(404, 422),
)
def rotate_key(actor: Actor, key_id: int, body: schemas.RotateIn):
    """A new secret now; the old one works for `grace_period_hours` more."""
    key = api_keys.get_key(actor, key_id)
    replacement, secret = api_keys.rotate_key(actor, key, body.grace_period_hours)
    return out.envelope(
        {
            "id": replacement.id,
            "name": replacement.name,
            "key": secret,
            "scopes": replacement.scopes,
            "previous_key_id": key.id,
            "grace_period_ends_at": key.expires_at.isoformat().replace("+00:00", "Z"),
        },
        "API key rotated successfully.",
    )


@operation(
    bp,
    "/api/v1/api-keys/<id:key_id>",
    methods=["DELETE"],
    summary="Revoke an API key",
    tag="api-keys",
    scope="api-keys:delete",
    envelope="none",
    status=204,
    errors=(404,),
)
def revoke_key(actor: Actor, key_id: int):
    api_keys.revoke_key(actor, api_keys.get_key(actor, key_id))
