"""Sign-up, sign-in, sign-out and invitation links."""

from __future__ import annotations

import re

from flask import Response, current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user

from pulse.accounts import users
from pulse.dashboard import bp
from pulse.dashboard.forms import Fields, initial
from pulse.dashboard.web import (
    TEAM_SESSION_KEY,
    failed,
    login_required,
    navigate,
    render,
    safe_next,
)
from pulse.errors import Forbidden, PulseError, Unauthorized
from pulse.extensions import db, limiter
from pulse.models import Invitation
from pulse.ratelimits import SIGN_IN_PER_ACCOUNT, SIGN_IN_PER_IP, signin_account_key
from pulse.teams import service as teams

INVITE_PATH = re.compile(r"^/invite/([A-Za-z0-9_-]{1,128})$")


def _next_url() -> str | None:
    return safe_next(request.values.get("next"))


def _invitation_in(next_url: str | None) -> Invitation | None:
    """The pending invitation a `next` of /invite/<token> points at, if it is still valid."""
    match = INVITE_PATH.match(next_url or "")
    if match is None:
        return None
    try:
        return teams.find_invitation(match.group(1))
    except PulseError:
        return None


def signup_open() -> bool:
    """Anyone may sign up: SIGNUP_OPEN, or no account exists yet."""
    return current_app.config["SIGNUP_OPEN"] or users.count_users() == 0


def check_invited_address(invitation: Invitation | None, email: str) -> None:
    """Closed sign-up lets an invitation link create one account: the invited address's.

    Otherwise whoever saw the link (forwarded, leaked) could open accounts under any
    address, as many as they liked, until someone used it.
    """
    if invitation is None or invitation.email.lower() != email.lower():
        raise Forbidden(
            "Sign-up is closed: an invitation admits only the address it was sent to.",
            errors={"email": ["Use the address the invitation was sent to."]},
        )


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(SIGN_IN_PER_IP, methods=["POST"])
def sign_up() -> Response:
    """Create an account, sign it in, and continue to `next` (or the first-team form)."""
    next_url = _next_url()
    if current_user.is_authenticated and request.method == "GET":
        return redirect(next_url or url_for("dashboard.index"))
    page, fragment = "auth/signup.html", "auth/_signup_form.html"
    # Open sign-up, the very first account, or someone holding a valid invitation link.
    anyone = signup_open()
    invitation = _invitation_in(next_url)
    if not anyone and invitation is None:
        return render("auth/signup_closed.html", "auth/_signup_closed.html", 403)
    if request.method == "GET":
        email = request.args.get("email") or (invitation.email if invitation else "")
        return render(page, fragment, form=initial({"email": email, "next": next_url}), errors={})
    fields = Fields(request.form)
    name = fields.text("name")
    email = fields.email("email")
    password = fields.password("password")
    try:
        fields.check()
        if not anyone:
            check_invited_address(invitation, email)
        user = users.sign_up(email, password, name)
        login_user(user)
        db.session.commit()
    except PulseError as error:
        return failed(error, page, fragment, request.form)
    return navigate(next_url or url_for("dashboard.index"), "Welcome to Pulse.")


@bp.route("/signin", methods=["GET", "POST"])
@limiter.limit(SIGN_IN_PER_IP, methods=["POST"])
@limiter.limit(SIGN_IN_PER_ACCOUNT, key_func=signin_account_key, methods=["POST"])
def sign_in() -> Response:
    """Check the password, start the session, continue to a local `next`."""
    next_url = _next_url()
    if current_user.is_authenticated and request.method == "GET":
        return redirect(next_url or url_for("dashboard.index"))
    page, fragment = "auth/signin.html", "auth/_signin_form.html"
    if request.method == "GET":
        form = initial({"email": request.args.get("email", ""), "next": next_url})
        return render(page, fragment, form=form, errors={})
    fields = Fields(request.form)
    email = fields.text("email", required=True, max_length=254)
    password = fields.password("password")
    try:
        fields.check()
        user = users.authenticate(email, password)
        if user is None:
            raise Unauthorized("Wrong email or password.", code="invalid_credentials")
        login_user(user, remember=request.form.get("remember") == "on")
        db.session.commit()
    except PulseError as error:
        return failed(error, page, fragment, request.form)
    return navigate(next_url or url_for("dashboard.index"))


@bp.post("/signout")
def sign_out() -> Response:
    """End the session (a POST with a CSRF token, so no other site can sign you out)."""
    logout_user()
    session.pop(TEAM_SESSION_KEY, None)
    flash("You are signed out.", "success")
    return navigate(url_for("dashboard.sign_in"))


@bp.get("/invite/<token>")
def invitation(token: str) -> Response:
    """Who invites you where, as which role; accept it, or sign up / sign in first."""
    found = teams.find_invitation(token)
    here = url_for("dashboard.invitation", token=token)
    return render(
        "auth/invitation.html",
        "auth/invitation.html",
        invitation=found,
        token=token,
        signup_url=url_for("dashboard.sign_up", next=here, email=found.email),
        signin_url=url_for("dashboard.sign_in", next=here, email=found.email),
    )


@bp.post("/invite/<token>")
@login_required
def accept_invitation(token: str) -> Response:
    """Join the team of the invitation as the signed-in user."""
    team = teams.accept_invitation(current_user._get_current_object(), token)
    db.session.commit()
    session[TEAM_SESSION_KEY] = team.id
    return navigate(url_for("dashboard.sites", team=team.slug), f"You joined {team.name}.")
