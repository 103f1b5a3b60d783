"""Sign-up, sign-in and the caller's account over JSON."""

from __future__ import annotations

from flask import current_app
from flask_login import login_user, logout_user

from pulse.accounts import users
from pulse.accounts.actor import Actor
from pulse.api import bp, schemas
from pulse.api import serializers as out
from pulse.api.routing import operation
from pulse.errors import Forbidden, Unauthorized
from pulse.extensions import db, limiter
from pulse.models import Team
from pulse.ratelimits import SIGN_IN_PER_ACCOUNT, SIGN_IN_PER_IP, signin_account_key


@operation(
    bp,
    "/api/v1/auth/signup",
    methods=["POST"],
    summary="Create an account",
    tag="accounts",
    auth="none",
    body=schemas.SignUpIn,
    response=schemas.UserOut,
    status=201,
    errors=(409, 422),
)
@limiter.limit(SIGN_IN_PER_IP)
def sign_up(body: schemas.SignUpIn):
    """Create an account and sign it in (a session cookie is set)."""
    if not current_app.config["SIGNUP_OPEN"] and users.count_users() > 0:
        raise Forbidden("Sign-up is closed on this Pulse; ask an admin for an invitation.")
    user = users.sign_up(body.email, body.password, body.name)
    login_user(user)
    return out.envelope(out.user(user), "Account created."), 201


@operation(
    bp,
    "/api/v1/auth/login",
    methods=["POST"],
    summary="Sign in (session cookie)",
    tag="accounts",
    auth="none",
    body=schemas.SignInIn,
    response=schemas.UserOut,
    aliases=["/api/v1/auth/signin"],
    errors=(401, 429),
)
@limiter.limit(SIGN_IN_PER_IP)
@limiter.limit(SIGN_IN_PER_ACCOUNT, key_func=signin_account_key)
def sign_in(body: schemas.SignInIn):
    """Check the password and set the session cookie."""
    user = users.authenticate(body.email, body.password)
    if user is None:
        raise Unauthorized("Wrong email or password.", code="invalid_credentials")
    login_user(user)
    return out.envelope(out.user(user))


@operation(
    bp,
    "/api/v1/auth/logout",
    methods=["POST"],
    summary="Sign out",
    tag="accounts",
    auth="optional",
    envelope="none",
    status=204,
    aliases=["/api/v1/auth/signout"],
)
def sign_out(actor: Actor | None):
    """End the session (no-op for API keys)."""
    logout_user()
    return None


@operation(
    bp,
    "/api/v1/account",
    methods=["GET"],
    summary="The caller: user, teams, key",
    tag="accounts",
    response=schemas.AccountOut,
    aliases=["/api/v1/me"],
)
def account(actor: Actor):
    """Who is calling, and which teams it can reach."""
    teams = db.session.query(Team).filter(Team.id.in_(actor.team_ids())).order_by(Team.id).all()
    return out.envelope(
        {
            "user": out.user(actor.user) if actor.user else None,
            "teams": [out.team(t, actor) for t in teams],
            "auth": "api_key" if actor.api_key else "session",
            "api_key": out.api_key(actor.api_key) if actor.api_key else None,
        }
    )
