"""Request helpers shared by the dashboard views: the actor, htmx responses, safe redirects."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import (
    Response,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from pulse.accounts.actor import Actor
from pulse.errors import PulseError
from pulse.extensions import db, login_manager
from pulse.models import Team
from pulse.teams import service as teams

P = ParamSpec("P")
R = TypeVar("R")
TEAM_SESSION_KEY = "team_id"
# Statuses whose answer is the form again, with messages (the htmx config swaps these).
FORM_STATUSES = frozenset({401, 403, 409, 422})


def is_htmx() -> bool:
    """An htmx request that wants a partial (a history restore wants the whole page)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def actor() -> Actor:
    """The signed-in person as an Actor, once per request (API keys never reach the dashboard)."""
    if "dashboard_actor" not in g:
        g.dashboard_actor = Actor(user=current_user._get_current_object())
    return g.dashboard_actor


def login_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """flask-login's check; an htmx request is sent to the sign-in page with HX-Redirect."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        if current_user.is_authenticated:
            return view(*args, **kwargs)
        if is_htmx():
            page = urlsplit(request.headers.get("HX-Current-URL", "")).path or "/"
            response = make_response("", 204)
            response.headers["HX-Redirect"] = url_for("dashboard.sign_in", next=page)
            return response
        return login_manager.unauthorized()

    return wrapped


def load_team(slug: str, scope: str = "teams:read") -> Team:
    """The team in the URL (404 unless the user belongs to it); it becomes the current team."""
    team = teams.get_team(actor(), slug, scope=scope)
    g.team = team
    if session.get(TEAM_SESSION_KEY) != team.id:
        session[TEAM_SESSION_KEY] = team.id
    return team


def remembered_team() -> Team | None:
    """The team kept in the session if the user still belongs to it, else their first team."""
    ids = actor().team_ids()
    if not ids:
        return None
    wanted = session.get(TEAM_SESSION_KEY)
    return db.session.get(Team, wanted if wanted in ids else min(ids))


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def render(page: str, fragment: str, status: int = 200, **context: Any) -> Response:
    """The full page, or for htmx only the fragment (plus flashed messages, swapped out of band)."""
    if is_htmx():
        body = render_template(fragment, **context)
        body += render_template("_flashes.html", oob=True)
    else:
        body = render_template(page, **context)
    return make_response(body, status)


def finish(message: str, url: str, page: str, fragment: str, **context: Any) -> Response:
    """After a successful POST: redirect (no JS) or re-render the fragment (htmx), with a flash."""
    flash(message, "success")
    if is_htmx():
        return render(page, fragment, **context)
    return redirect(url, 303)


def navigate(url: str, message: str | None = None) -> Response:
    """Go to another page after a POST: 303 for browsers, HX-Redirect for htmx."""
    if message:
        flash(message, "success")
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


def error_messages(
    error: PulseError,
    *,
    flatten: bool = False,
    known: Iterable[str] | None = None,
    aliases: dict[str, str] | None = None,
) -> dict[str, list[str]]:
    """A service error as form errors; `_form` holds what belongs to no field on the form.

    `aliases` maps the service's field names to the form's; with `known`, messages for
    any other field go to `_form` so that none is lost.
    """
    errors: dict[str, list[str]] = {}
    fields = set(known) if known is not None else None
    for name, messages in (error.errors or {}).items():
        name = (aliases or {}).get(name, name)
        if flatten or (fields is not None and name not in fields):
            name = "_form"
        errors.setdefault(name, []).extend(messages)
    generic = error.message == type(error).message
    if not errors or error.status != 422 or (flatten and not generic):
        errors.setdefault("_form", []).insert(0, error.message)
    return errors


def failed(
    error: PulseError,
    page: str,
    fragment: str,
    form: Any,
    build: Callable[[], dict[str, Any]] | None = None,
    *,
    flatten: bool = False,
    **context: Any,
) -> Response:
    """Roll back, then re-render a form with the service's messages and status (422, 403, 409).

    `build` makes the rest of the page's context after the rollback, so lists do not show
    rows that the failed transaction had added. Errors that are not about the form (404,
    410, ...) go on to the app's error page.
    """
    db.session.rollback()
    if error.status not in FORM_STATUSES:
        raise error
    if build is not None:
        context = {**build(), **context}
    known = None if flatten else set(getattr(form, "keys", lambda: [])())
    errors = error_messages(error, flatten=flatten, known=known)
    return render(page, fragment, error.status, form=form, errors=errors, **context)


def no_store(response: Response) -> Response:
    """A response that shows a secret once: browsers and proxies must not keep it."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def base_url() -> str:
    """The public address of this Pulse, for links shown to people (invite links)."""
    return str(current_app.config["BASE_URL"])
