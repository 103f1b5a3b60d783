"""Team members: invite, change roles, remove; pending invitations and their links."""

from __future__ import annotations

from typing import Any

from flask import Response, flash, request, session, url_for

from pulse.dashboard import bp
from pulse.dashboard.contexts import confirm_context, members_context
from pulse.dashboard.forms import Fields, initial
from pulse.dashboard.web import (
    TEAM_SESSION_KEY,
    actor,
    base_url,
    failed,
    finish,
    load_team,
    login_required,
    navigate,
    no_store,
    render,
)
from pulse.errors import PulseError
from pulse.extensions import db
from pulse.jobs import enqueue
from pulse.jobs.emails import send_invitation
from pulse.models import ROLES, Team
from pulse.teams import service as teams

PAGE, FRAGMENT = "dashboard/members/page.html", "dashboard/members/_fragment.html"
CONFIRM_PAGE, CONFIRM_FRAGMENT = "dashboard/confirm/page.html", "dashboard/confirm/_fragment.html"


def _blank_invite() -> dict[str, Any]:
    return {"form": initial({"role": "viewer"}), "errors": {}}


def _members_url(team: Team) -> str:
    return url_for("dashboard.members", team=team.slug)


@bp.get("/t/<team>/members")
@login_required
def members(team: str) -> Response:
    """Who is in the team, with role changes and invitations for those allowed."""
    found = load_team(team, scope="members:read")
    return render(PAGE, FRAGMENT, **members_context(found), **_blank_invite())


@bp.post("/t/<team>/members")
@login_required
def invite_member(team: str) -> Response:
    """An existing account joins at once; another address gets an invitation link."""
    found = load_team(team, scope="members:read")
    fields = Fields(request.form)
    email = fields.email("email")
    role = fields.choice("role", ROLES, "viewer") or "viewer"
    try:
        fields.check()
        membership, invitation, token = teams.add_member(actor(), found, email, role)
        if invitation is not None:
            enqueue(send_invitation, invitation.id, token, queue="emails")
        db.session.commit()
    except PulseError as error:
        return failed(error, PAGE, FRAGMENT, request.form, lambda: members_context(found))
    if membership is not None:
        return finish(
            f"{email} joined the team as {role}.",
            _members_url(found),
            PAGE,
            FRAGMENT,
            **members_context(found),
            **_blank_invite(),
        )
    # The link is shown in this response only: rendered, not redirected, and never cached.
    flash(f"Invitation for {email} created. Pulse emails it too if mail is set up.", "success")
    link = base_url() + url_for("dashboard.invitation", token=token)
    response = render(
        PAGE, FRAGMENT, 201, **members_context(found, invite_link=link), **_blank_invite()
    )
    return no_store(response)


@bp.post("/t/<team>/members/<id:user_id>/role")
@login_required
def change_role(team: str, user_id: int) -> Response:
    """Give a member another role (only owners make or unmake owners)."""
    found = load_team(team, scope="members:read")
    fields = Fields(request.form)
    role = fields.choice("role", ROLES)
    try:
        fields.check()
        membership = teams.change_role(actor(), teams.get_membership(actor(), found, user_id), role)
        email = membership.user.email
        db.session.commit()
    except PulseError as error:
        return failed(
            error,
            PAGE,
            FRAGMENT,
            initial({"role": "viewer"}),
            lambda: members_context(found),
            flatten=True,
        )
    return finish(
        f"{email} is now {role}.",
        _members_url(found),
        PAGE,
        FRAGMENT,
        **members_context(found),
        **_blank_invite(),
    )


@bp.route("/t/<team>/members/<id:user_id>/remove", methods=["GET", "POST"])
@login_required
def remove_member(team: str, user_id: int) -> Response:
    """Remove someone (after a confirmation); removing yourself is leaving the team."""
    found = load_team(team, scope="members:read")
    me = actor()
    membership = teams.get_membership(me, found, user_id)
    leaving = membership.user_id == me.user_id
    if not leaving:
        me.require(found, "members:write", missing="Team")
    email = membership.user.email
    members_url = _members_url(found)
    context = confirm_context(
        title="Leave this team?" if leaving else f"Remove {email}?",
        message=(
            f"You will lose access to {found.name}."
            if leaving
            else f"{email} will lose access to {found.name} at once."
        ),
        action=url_for("dashboard.remove_member", team=found.slug, user_id=user_id),
        button="Leave team" if leaving else "Remove member",
        cancel_url=members_url,
        cancel_hx=members_url,
        target="#members",
    )
    if request.method == "GET":
        return render(CONFIRM_PAGE, CONFIRM_FRAGMENT, form=initial(), errors={}, **context)
    try:
        teams.remove_member(me, membership)
        db.session.commit()
    except PulseError as error:
        return failed(
            error, PAGE, FRAGMENT, initial({"role": "viewer"}), lambda: members_context(found)
        )
    if leaving:
        session.pop(TEAM_SESSION_KEY, None)
        return navigate(url_for("dashboard.index"), f"You left {found.name}.")
    return finish(
        f"{email} was removed from the team.",
        members_url,
        PAGE,
        FRAGMENT,
        **members_context(found),
        **_blank_invite(),
    )


@bp.post("/t/<team>/invitations/<id:invitation_id>/withdraw")
@login_required
def withdraw_invitation(team: str, invitation_id: int) -> Response:
    """Withdraw a pending invitation: its link stops working."""
    found = load_team(team, scope="members:read")
    try:
        teams.revoke_invitation(actor(), found, invitation_id)
        db.session.commit()
    except PulseError as error:
        return failed(
            error, PAGE, FRAGMENT, initial({"role": "viewer"}), lambda: members_context(found)
        )
    return finish(
        "Invitation withdrawn.",
        _members_url(found),
        PAGE,
        FRAGMENT,
        **members_context(found),
        **_blank_invite(),
    )
