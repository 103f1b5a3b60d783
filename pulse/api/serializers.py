"""ORM objects to response models, at the edge (models have no to_dict)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from pulse.accounts.actor import Actor
from pulse.api import schemas
from pulse.models import ApiKey, AuditLog, Invitation, Membership, Site, Team, User
from pulse.sites.service import tracking_snippet


def envelope(data: Any, message: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if message:
        body["message"] = message
    if isinstance(data, schemas.BaseModel):
        data = data.model_dump(mode="json")
    body["data"] = data
    return body


def user(u: User) -> dict[str, Any]:
    out = schemas.UserOut(
        id=u.id,
        email=u.email,
        name=u.name,
        email_verified=u.email_verified_at is not None,
        created_at=u.created_at,
    )
    return out.model_dump(mode="json")


def team(t: Team, actor: Actor | None = None) -> dict[str, Any]:
    out = schemas.TeamOut.model_validate(t)
    if actor is not None:
        out.role = actor.role_in(t.id) or ("api_key" if actor.api_key else None)
    return out.model_dump(mode="json")


def member(m: Membership) -> dict[str, Any]:
    return schemas.MemberOut(
        user_id=m.user_id,
        email=m.user.email,
        name=m.user.name,
        role=m.role,
        joined_at=m.created_at,
    ).model_dump(mode="json")


def invitation(i: Invitation, token: str | None = None) -> dict[str, Any]:
    out = schemas.InvitationOut.model_validate(i)
    if token:
        out.invite_url = f"{current_app.config['BASE_URL']}/invite/{token}"
    return out.model_dump(mode="json")


def site(s: Site) -> dict[str, Any]:
    return schemas.SiteOut(
        id=s.id,
        team=s.team.slug,
        name=s.name,
        domain=s.domain,
        allowed_origins=list(s.allowed_origins or []),
        site_key=s.site_key,
        project_token=s.site_key,
        timezone=s.timezone,
        tracking_snippet=tracking_snippet(s),
        created_at=s.created_at,
        updated_at=s.updated_at,
    ).model_dump(mode="json")


def api_key(k: ApiKey) -> dict[str, Any]:
    return schemas.ApiKeyOut.model_validate(k).model_dump(mode="json")


def api_key_created(k: ApiKey, secret: str) -> dict[str, Any]:
    return {**api_key(k), "key": secret}


def audit_log(entry: AuditLog) -> dict[str, Any]:
    return schemas.AuditLogOut.model_validate(entry).model_dump(mode="json")
