"""Who is calling: API keys from headers, people from the flask-login session."""

from __future__ import annotations

from flask import Flask, g, request
from flask_login import current_user

from pulse.accounts import api_keys
from pulse.accounts.actor import Actor
from pulse.errors import Unauthorized
from pulse.extensions import db, login_manager
from pulse.models import User


def key_in_headers(authorization: str, api_key: str) -> str | None:
    """The API key of an `Authorization: Bearer` or an `X-API-Key` header value, if any."""
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return api_key.strip() or None


QUERY_KEY_PARAMS = ("token", "key", "api_key", "k")


def presented_key(allow_query: bool = False) -> str | None:
    """The API key in `Authorization: Bearer`, `X-API-Key`, or where the endpoint allows
    it (the pixel, read-only analytics) in the query string, `?token=` (seed 002) or
    `?k=` (seed 000's pixel)."""
    key = key_in_headers(
        request.headers.get("Authorization", ""), request.headers.get("X-API-Key", "")
    )
    if key is not None:
        return key
    if allow_query:
        return next((request.args[n] for n in QUERY_KEY_PARAMS if request.args.get(n)), None)
    return None


def current_actor(allow_query_key: bool = False) -> Actor | None:
    """The caller, once per request. A key that is presented but wrong is a 401."""
    if "actor" in g:
        return g.actor
    secret = presented_key(allow_query_key)
    actor: Actor | None = None
    if secret is not None:
        key = api_keys.authenticate(secret)
        if key is None:
            raise Unauthorized(
                "Invalid or missing API key.",
                headers={"WWW-Authenticate": 'Bearer realm="pulse"'},
            )
        actor = Actor(api_key=key)
        g.auth_method = "api_key"
    elif current_user.is_authenticated:
        actor = Actor(user=current_user._get_current_object())
        g.auth_method = "session"
    g.actor = actor
    return actor


def init_app(app: Flask) -> None:
    """Wire flask-login to the User model; session ids carry a version for revocation."""
    login_manager.init_app(app)
    login_manager.login_view = "dashboard.sign_in"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(session_id: str) -> User | None:
        user_id, _, version = session_id.partition(":")
        if not user_id.isdigit() or not version.isdigit():
            return None
        user = db.session.get(User, int(user_id))
        if user is None or not user.is_active or user.session_version != int(version):
            return None
        return user
