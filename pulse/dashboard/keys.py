"""API keys: create (the secret is shown once), rotate with a grace period, revoke.

The same section appears on the team's API-keys page and on a site's settings page; a
hidden `site_context` field says which page a form came from, so the answer fits it.
A new secret is rendered in the response to the POST itself (never redirected through
the session cookie) and sent with `Cache-Control: no-store`.
"""

from __future__ import annotations

from typing import Any

from flask import Response, flash, redirect, request, url_for

from pulse.accounts import api_keys
from pulse.accounts.scopes import SCOPES
from pulse.dashboard import bp
from pulse.dashboard.contexts import (
    GRACE_DEFAULT_HOURS,
    GRACE_MAX_HOURS,
    confirm_context,
    keys_context,
    site_context,
    site_form,
    team_key,
    team_site,
)
from pulse.dashboard.forms import Fields, initial
from pulse.dashboard.web import (
    FORM_STATUSES,
    actor,
    error_messages,
    finish,
    is_htmx,
    load_team,
    login_required,
    no_store,
    render,
)
from pulse.errors import PulseError
from pulse.extensions import db
from pulse.models import Site, Team

KEYS_PAGE, KEYS_FRAGMENT = "dashboard/api_keys/page.html", "dashboard/api_keys/_fragment.html"
SITE_PAGE = "dashboard/site/page.html"
CONFIRM_PAGE, CONFIRM_FRAGMENT = "dashboard/confirm/page.html", "dashboard/confirm/_fragment.html"
KEY_FIELDS = frozenset({"name", "scopes", "site_id", "expires_on"})


def _site_context(team: Team) -> Site | None:
    """The site whose settings page the request came from, if any."""
    raw = request.values.get("site_context", "") or request.args.get("site", "")
    if not raw.isdigit() or len(raw) > 10:
        return None
    return team_site(team, int(raw))


def _section(team: Team, site: Site | None, status: int = 200, **keys: Any) -> Response:
    """The key section as a partial (htmx), or the whole page it lives on."""
    if site is None:
        return render(KEYS_PAGE, KEYS_FRAGMENT, status, **keys_context(team, None, **keys))
    return render(
        SITE_PAGE,
        KEYS_FRAGMENT,
        status,
        form=site_form(site),
        errors={},
        **site_context(team, site, **keys),
    )


def _back(team: Team, site: Site | None) -> str:
    if site is None:
        return url_for("dashboard.api_keys", team=team.slug)
    return url_for("dashboard.site_settings", team=team.slug, site_id=site.id) + "#api-keys"


def _failed(error: PulseError, team: Team, site: Site | None, form: Any = None) -> Response:
    """Roll back and show the section again with the service's messages."""
    db.session.rollback()
    if error.status not in FORM_STATUSES:
        raise error
    if form is None:  # a row action (rotate, revoke): the messages go above the list
        return _section(team, site, error.status, list_errors=error_messages(error, flatten=True))
    messages = error_messages(error, known=KEY_FIELDS, aliases={"expires_at": "expires_on"})
    return _section(team, site, error.status, key_form=form, key_errors=messages)


@bp.get("/t/<team>/api-keys", endpoint="api_keys")
@login_required
def api_keys_page(team: str) -> Response:
    """The team's keys; `?site=` narrows the list to keys that can read that site."""
    found = load_team(team, scope="api-keys:read")
    site = _site_context(found)
    if site is not None and not is_htmx():  # the site's keys live on its settings page
        return redirect(_back(found, site))
    return _section(found, site)


@bp.post("/t/<team>/api-keys")
@login_required
def create_key(team: str) -> Response:
    """Issue a key with scopes you hold, optionally bound to one site and with an expiry."""
    found = load_team(team, scope="api-keys:read")
    site = _site_context(found)
    fields = Fields(request.form)
    name = fields.text("name", required=True)
    scopes = fields.choices("scopes", SCOPES)
    if not scopes:
        fields.error("scopes", "Choose at least one permission.")
    site_id = fields.optional_id("site_id")
    expires_at = fields.end_of_day("expires_on")
    try:
        fields.check()
        key, secret = api_keys.create_key(
            actor(), found, name=name, scopes=scopes, site_id=site_id, expires_at=expires_at
        )
        db.session.commit()
    except PulseError as error:
        return _failed(error, found, site, request.form)
    flash(f"API key {key.name} created.", "success")
    shown = {"title": "Your new API key", "name": key.name, "value": secret, "replaced": None}
    return no_store(_section(found, site, 201, secret=shown))


@bp.post("/t/<team>/api-keys/<id:key_id>/rotate")
@login_required
def rotate_key(team: str, key_id: int) -> Response:
    """A new secret now; the old one keeps working for the grace period you choose."""
    found = load_team(team, scope="api-keys:read")
    site = _site_context(found)
    key = team_key(found, key_id)
    fields = Fields(request.form)
    hours = fields.integer(
        "grace_period_hours", minimum=0, maximum=GRACE_MAX_HOURS, default=GRACE_DEFAULT_HOURS
    )
    try:
        fields.check()
        replacement, secret = api_keys.rotate_key(actor(), key, hours)
        db.session.commit()
    except PulseError as error:
        return _failed(error, found, site)
    flash(f"API key {replacement.name} rotated.", "success")
    shown = {
        "title": "The rotated key's new secret",
        "name": replacement.name,
        "value": secret,
        "replaced": key,
    }
    return no_store(_section(found, site, 200, secret=shown))


@bp.route("/t/<team>/api-keys/<id:key_id>/revoke", methods=["GET", "POST"])
@login_required
def revoke_key(team: str, key_id: int) -> Response:
    """Stop a key at once, after a confirmation."""
    found = load_team(team, scope="api-keys:read")
    site = _site_context(found)
    key = team_key(found, key_id)
    actor().require(found, "api-keys:delete", missing="API key")
    back = _back(found, site)
    context = confirm_context(
        title=f"Revoke the key {key.name}?",
        message=(
            f"Programs using the key {key.prefix}… stop working at once. This cannot be undone."
        ),
        action=url_for("dashboard.revoke_key", team=found.slug, key_id=key.id),
        button="Revoke key",
        cancel_url=back,
        cancel_hx=url_for("dashboard.api_keys", team=found.slug, site=site.id if site else None),
        target="#api-keys",
        hidden={"site_context": site.id} if site else None,
    )
    if request.method == "GET":
        return render(CONFIRM_PAGE, CONFIRM_FRAGMENT, form=initial(), errors={}, **context)
    name = key.name
    try:
        api_keys.revoke_key(actor(), key)
        db.session.commit()
    except PulseError as error:
        return _failed(error, found, site)
    if site is None:
        return finish(
            f"API key {name} revoked.",
            back,
            KEYS_PAGE,
            KEYS_FRAGMENT,
            **keys_context(found),
        )
    return finish(
        f"API key {name} revoked.",
        back,
        SITE_PAGE,
        KEYS_FRAGMENT,
        form=site_form(site),
        errors={},
        **site_context(found, site),
    )
