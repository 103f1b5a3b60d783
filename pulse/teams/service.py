"""Operations on teams and their members, each checked against the acting principal."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from pulse.accounts import audit
from pulse.accounts.actor import Actor
from pulse.accounts.scopes import ROLE_RANK
from pulse.errors import Conflict, Forbidden, Gone, NotFound, ValidationFailed
from pulse.extensions import db
from pulse.models import ROLES, TIERS, Invitation, Membership, Team, User, utcnow
from pulse.teams.slugs import slug_problem, slugify

INVITATION_LIFETIME = timedelta(days=7)


def _unique_slug(base: str) -> str:
    slug, n = base, 1
    while db.session.scalar(select(Team.id).where(Team.slug == slug)) is not None:
        n += 1
        slug = f"{base[:58]}-{n}"
    return slug


def create_team(actor: Actor, name: str, slug: str | None = None, tier: str = "free") -> Team:
    """A new team whose owner is the acting person (or the key's creator)."""
    owner_id = actor.user_id
    if owner_id is None:
        raise Forbidden("Only a person (or a key made by one) can create a team.")
    if actor.api_key is not None and not actor.can(actor.api_key.team_id, "teams:write"):
        raise Forbidden(
            "Insufficient permissions. Required scope: teams:write",
            extra={"required_scope": "teams:write"},
        )
    if tier not in TIERS:
        raise ValidationFailed(errors={"tier": [f"One of: {', '.join(TIERS)}"]})
    if slug:
        problem = slug_problem(slug)
        if problem:
            raise ValidationFailed(errors={"slug": [problem]})
        if db.session.scalar(select(Team.id).where(Team.slug == slug)) is not None:
            raise Conflict(f"The slug {slug!r} is taken.", code="slug_taken")
    else:
        slug = _unique_slug(slugify(name))
    team = Team(name=name, slug=slug, tier=tier, settings={"timezone": "UTC", "locale": "en"})
    db.session.add(team)
    db.session.flush()
    db.session.add(Membership(team_id=team.id, user_id=owner_id, role="owner"))
    actor.joined(team.id, "owner")
    audit.record(actor, "team.created", team_id=team.id, target=team, details={"slug": slug})
    return team


def list_teams(actor: Actor) -> Any:
    """A select of the teams the actor belongs to (for pagination)."""
    return select(Team).where(Team.id.in_(actor.team_ids()))


def get_team(actor: Actor, ident: str, scope: str = "teams:read") -> Team:
    """A team by slug or numeric id, if the actor may see it."""
    if "\x00" in ident or len(ident) > 64:
        raise NotFound("Team not found.")
    if ident.isdigit():
        team = db.session.get(Team, int(ident)) if len(ident) < 12 else None
    else:
        team = db.session.scalar(select(Team).where(Team.slug == ident))
    if team is None:
        raise NotFound("Team not found.")
    actor.require(team, scope, missing="Team")
    return team


def update_team(actor: Actor, team: Team, changes: dict[str, Any]) -> Team:
    actor.require(team, "teams:write", missing="Team")
    if "slug" in changes and changes["slug"] != team.slug:
        problem = slug_problem(changes["slug"])
        if problem:
            raise ValidationFailed(errors={"slug": [problem]})
        if db.session.scalar(select(Team.id).where(Team.slug == changes["slug"])) is not None:
            raise Conflict(f"The slug {changes['slug']!r} is taken.", code="slug_taken")
        team.slug = changes["slug"]
    if "name" in changes:
        team.name = changes["name"]
    if "tier" in changes:
        if changes["tier"] not in TIERS:
            raise ValidationFailed(errors={"tier": [f"One of: {', '.join(TIERS)}"]})
        team.tier = changes["tier"]
    if changes.get("settings"):
        team.settings = {**(team.settings or {}), **changes["settings"]}
    audit.record(actor, "team.updated", team_id=team.id, target=team, details=_loggable(changes))
    return team


def delete_team(actor: Actor, team: Team) -> None:
    actor.require(team, "teams:delete", missing="Team")
    audit.record(actor, "team.deleted", target=team, details={"slug": team.slug})
    db.session.delete(team)


def _loggable(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in changes.items() if k in {"name", "slug", "tier", "settings"}}


# Members ---------------------------------------------------------------------------


def list_members(actor: Actor, team: Team) -> Any:
    actor.require(team, "members:read", missing="Team")
    return (
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.team_id == team.id)
    )


def list_invitations(actor: Actor, team: Team) -> list[Invitation]:
    actor.require(team, "members:read", missing="Team")
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.team_id == team.id,
                Invitation.accepted_at.is_(None),
                Invitation.expires_at > utcnow(),
            )
            .order_by(Invitation.id)
        )
    )


def _check_role_grant(actor: Actor, team: Team, role: str) -> None:
    if role not in ROLES:
        raise ValidationFailed(errors={"role": [f"One of: {', '.join(ROLES)}"]})
    actor.require(team, "members:write", missing="Team")
    if role == "owner" and actor.role_in(team.id) != "owner":
        raise Forbidden("Only an owner can make someone an owner.")


def add_member(
    actor: Actor, team: Team, email: str, role: str
) -> tuple[Membership | None, Invitation | None, str | None]:
    """Add an existing account at once, or invite the address; returns the invite token once."""
    _check_role_grant(actor, team, role)
    email = email.strip().lower()
    user = db.session.scalar(select(User).where(User.email == email))
    if user is not None:
        existing = db.session.scalar(
            select(Membership).where(Membership.team_id == team.id, Membership.user_id == user.id)
        )
        if existing is not None:
            raise Conflict(f"{email} is already a member of this team.", code="already_member")
        membership = Membership(team_id=team.id, user_id=user.id, role=role)
        db.session.add(membership)
        db.session.flush()
        audit.record(actor, "member.added", team_id=team.id, target=user, details={"role": role})
        return membership, None, None
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        team_id=team.id,
        email=email,
        role=role,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
        invited_by_id=actor.user_id,
        expires_at=utcnow() + INVITATION_LIFETIME,
    )
    db.session.add(invitation)
    db.session.flush()
    audit.record(
        actor, "member.invited", team_id=team.id, target=invitation, details={"role": role}
    )
    return None, invitation, token


def get_membership(actor: Actor, team: Team, user_id: int) -> Membership:
    actor.require(team, "members:read", missing="Team")
    membership = db.session.scalar(
        select(Membership).where(Membership.team_id == team.id, Membership.user_id == user_id)
    )
    if membership is None:
        raise NotFound("Member not found.")
    return membership


def _owner_count(team_id: int) -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.team_id == team_id, Membership.role == "owner")
        )
        or 0
    )


def change_role(actor: Actor, membership: Membership, role: str) -> Membership:
    team = membership.team
    _check_role_grant(actor, team, role)
    if membership.role == "owner" and actor.role_in(team.id) != "owner":
        raise Forbidden("Only an owner can change another owner's role.")
    if membership.role == "owner" and role != "owner" and _owner_count(team.id) <= 1:
        raise Conflict("A team needs at least one owner.", code="last_owner")
    old = membership.role
    membership.role = role
    audit.record(
        actor,
        "member.role_changed",
        team_id=team.id,
        target=membership.user,
        details={"from": old, "to": role},
    )
    return membership


def remove_member(actor: Actor, membership: Membership) -> None:
    """Owners and admins remove others; anyone may leave (but not the last owner)."""
    team = membership.team
    leaving = actor.user is not None and actor.user.id == membership.user_id
    if not leaving:
        actor.require(team, "members:write", missing="Team")
        if ROLE_RANK[membership.role] > ROLE_RANK.get(actor.role_in(team.id) or "", 3):
            raise Forbidden("You cannot remove someone with a higher role than yours.")
    if membership.role == "owner" and _owner_count(team.id) <= 1:
        raise Conflict("A team needs at least one owner.", code="last_owner")
    audit.record(actor, "member.removed", team_id=team.id, target=membership.user)
    db.session.delete(membership)


def revoke_invitation(actor: Actor, team: Team, invitation_id: int) -> None:
    actor.require(team, "members:write", missing="Team")
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.team_id != team.id:
        raise NotFound("Invitation not found.")
    audit.record(actor, "member.invitation_revoked", team_id=team.id, target=invitation)
    db.session.delete(invitation)


def find_invitation(token: str) -> Invitation:
    """The invitation for a token from an invite link; 404 unknown, 410 expired, 409 used."""
    digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == digest))
    if invitation is None:
        raise NotFound("This invitation does not exist.")
    if invitation.accepted_at is not None:
        raise Conflict("This invitation was already used.", code="invitation_used")
    if invitation.expires_at <= utcnow():
        raise Gone("This invitation has expired; ask for a new one.")
    return invitation


def accept_invitation(user: User, token: str) -> Team:
    """Join the team of the invitation; the link itself is the proof of the address."""
    invitation = find_invitation(token)
    team = invitation.team
    existing = db.session.scalar(
        select(Membership).where(Membership.team_id == team.id, Membership.user_id == user.id)
    )
    if existing is None:
        db.session.add(Membership(team_id=team.id, user_id=user.id, role=invitation.role))
    invitation.accepted_at = utcnow()
    audit.record(
        Actor(user=user),
        "member.joined",
        team_id=team.id,
        target=user,
        details={"role": invitation.role},
    )
    return team
