"""Teams (alias: workspaces) and their members."""

from __future__ import annotations

from sqlalchemy import select

from pulse.accounts.actor import Actor
from pulse.api import bp, schemas
from pulse.api import serializers as out
from pulse.api.listing import list_params, paginate
from pulse.api.routing import operation
from pulse.jobs import enqueue
from pulse.jobs.emails import send_invitation
from pulse.models import AuditLog, Membership, Team
from pulse.teams import service

TEAM = "/api/v1/teams/<team>"
WORKSPACE = "/api/v1/workspaces/<team>"


@operation(
    bp,
    "/api/v1/teams",
    summary="List your teams",
    tag="teams",
    scope="teams:read",
    aliases=["/api/v1/workspaces"],
    response=schemas.TeamOut,
    envelope="list",
)
def list_teams(actor: Actor):
    params = list_params(("id", "name", "slug", "created_at", "updated_at"))
    return paginate(service.list_teams(actor), Team, params, lambda t: out.team(t, actor))


@operation(
    bp,
    "/api/v1/teams",
    methods=["POST"],
    summary="Create a team",
    tag="teams",
    scope="teams:write",
    aliases=["/api/v1/workspaces"],
    body=schemas.TeamIn,
    response=schemas.TeamOut,
    status=201,
    errors=(409, 422),
)
def create_team(actor: Actor, body: schemas.TeamIn):
    """Create a team; the caller (or the key's creator) becomes its owner."""
    team = service.create_team(actor, body.name, body.slug, body.tier)
    return out.envelope(out.team(team, actor), "Team created successfully.")


@operation(
    bp,
    TEAM,
    summary="Get a team (by slug or id)",
    tag="teams",
    scope="teams:read",
    aliases=[WORKSPACE],
    response=schemas.TeamOut,
    errors=(404,),
)
def get_team(actor: Actor, team: str):
    return out.envelope(out.team(service.get_team(actor, team), actor))


@operation(
    bp,
    TEAM,
    methods=["PATCH", "PUT"],
    summary="Update a team",
    tag="teams",
    scope="teams:write",
    aliases=[WORKSPACE],
    body=schemas.TeamPatch,
    response=schemas.TeamOut,
    errors=(404, 409, 422),
)
def update_team(actor: Actor, team: str, body: schemas.TeamPatch):
    found = service.get_team(actor, team)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    service.update_team(actor, found, changes)
    return out.envelope(out.team(found, actor), "Team updated successfully.")


@operation(
    bp,
    TEAM,
    methods=["DELETE"],
    summary="Delete a team and all its data",
    tag="teams",
    scope="teams:delete",
    aliases=[WORKSPACE],
    envelope="none",
    status=204,
    errors=(404,),
)
def delete_team(actor: Actor, team: str):
    service.delete_team(actor, service.get_team(actor, team))


@operation(
    bp,
    f"{TEAM}/members",
    summary="List members",
    tag="members",
    scope="members:read",
    aliases=[f"{WORKSPACE}/members"],
    response=schemas.MemberOut,
    envelope="list",
    errors=(404,),
)
def list_members(actor: Actor, team: str):
    found = service.get_team(actor, team)
    params = list_params(("id", "created_at", "role"))
    return paginate(service.list_members(actor, found), Membership, params, out.member)


@operation(
    bp,
    f"{TEAM}/members",
    methods=["POST"],
    summary="Add or invite a member",
    tag="members",
    scope="members:write",
    aliases=[f"{WORKSPACE}/members"],
    body=schemas.MemberIn,
    response=schemas.MemberAdded,
    status=201,
    errors=(404, 409, 422),
)
def add_member(actor: Actor, team: str, body: schemas.MemberIn):
    """An existing account joins at once; another address gets an invitation link."""
    found = service.get_team(actor, team)
    membership, invitation, token = service.add_member(actor, found, body.email, body.role)
    if membership is not None:
        return out.envelope({"status": "added", "member": out.member(membership)})
    enqueue(send_invitation, invitation.id, token, queue="emails")
    return out.envelope({"status": "invited", "invitation": out.invitation(invitation, token)}), 202


@operation(
    bp,
    f"{TEAM}/invitations",
    summary="Pending invitations",
    tag="members",
    scope="members:read",
    response=schemas.InvitationOut,
    envelope="list",
    errors=(404,),
)
def list_invitations(actor: Actor, team: str):
    found = service.get_team(actor, team)
    return out.envelope([out.invitation(i) for i in service.list_invitations(actor, found)])


@operation(
    bp,
    f"{TEAM}/invitations/<id:invitation_id>",
    methods=["DELETE"],
    summary="Withdraw an invitation",
    tag="members",
    scope="members:write",
    envelope="none",
    status=204,
    errors=(404,),
)
def revoke_invitation(actor: Actor, team: str, invitation_id: int):
    service.revoke_invitation(actor, service.get_team(actor, team), invitation_id)


@operation(
    bp,
    f"{TEAM}/members/<id:user_id>",
    summary="Get a member",
    tag="members",
    scope="members:read",
    aliases=[f"{WORKSPACE}/members/<id:user_id>"],
    response=schemas.MemberOut,
    errors=(404,),
)
def get_member(actor: Actor, team: str, user_id: int):
    found = service.get_team(actor, team)
    return out.envelope(out.member(service.get_membership(actor, found, user_id)))


@operation(
    bp,
    f"{TEAM}/members/<id:user_id>",
    methods=["PATCH", "PUT"],
    summary="Change a member's role",
    tag="members",
    scope="members:write",
    aliases=[f"{WORKSPACE}/members/<id:user_id>"],
    body=schemas.MemberPatch,
    response=schemas.MemberOut,
    errors=(403, 404, 409, 422),
)
def change_member_role(actor: Actor, team: str, user_id: int, body: schemas.MemberPatch):
    found = service.get_team(actor, team)
    membership = service.change_role(
        actor, service.get_membership(actor, found, user_id), body.role
    )
    return out.envelope(out.member(membership), "Role changed.")


@operation(
    bp,
    f"{TEAM}/members/<id:user_id>",
    methods=["DELETE"],
    summary="Remove a member (or leave the team)",
    tag="members",
    aliases=[f"{WORKSPACE}/members/<id:user_id>"],
    envelope="none",
    status=204,
    errors=(403, 404, 409),
)
def remove_member(actor: Actor, team: str, user_id: int):
    found = service.get_team(actor, team)
    service.remove_member(actor, service.get_membership(actor, found, user_id))


@operation(
    bp,
    f"{TEAM}/audit-log",
    summary="The team's audit log",
    tag="teams",
    scope="audit:read",
    response=schemas.AuditLogOut,
    envelope="list",
    errors=(404,),
)
def audit_log(actor: Actor, team: str):
    found = service.get_team(actor, team, scope="audit:read")
    params = list_params(("id", "created_at", "action"), default_sort="-id")
    query = select(AuditLog).where(AuditLog.team_id == found.id)
    return paginate(query, AuditLog, params, out.audit_log)
