"""Sites: the list, the create form, settings with the tracking snippet, and deletion."""

from __future__ import annotations

from typing import Any

from flask import Response, request, url_for

from pulse.dashboard import bp
from pulse.dashboard.contexts import (
    confirm_context,
    site_context,
    site_form,
    sites_context,
    team_site,
    timezone_choices,
)
from pulse.dashboard.forms import Fields, initial
from pulse.dashboard.web import (
    actor,
    failed,
    finish,
    load_team,
    login_required,
    navigate,
    render,
)
from pulse.errors import PulseError
from pulse.extensions import db
from pulse.sites import service as sites

LIST_PAGE, LIST_FRAGMENT = "dashboard/sites/page.html", "dashboard/sites/_fragment.html"
NEW_PAGE, NEW_FRAGMENT = "dashboard/sites/new.html", "dashboard/sites/_form.html"
SITE_PAGE, SITE_FRAGMENT = "dashboard/site/page.html", "dashboard/site/_fragment.html"
CONFIRM_PAGE, CONFIRM_FRAGMENT = "dashboard/confirm/page.html", "dashboard/confirm/_fragment.html"


def _site_fields(fields: Fields) -> dict[str, Any]:
    """The site form as the keyword arguments of the sites service."""
    return {
        "name": fields.text("name", required=True),
        "domain": fields.text("domain", required=True, max_length=253),
        "allowed_origins": fields.lines("allowed_origins", max_lines=sites.MAX_ORIGINS),
        "timezone": fields.text("timezone", max_length=64) or "UTC",
    }


@bp.get("/t/<team>/sites", endpoint="sites")
@login_required
def sites_list(team: str) -> Response:
    """The team's sites; members with sites:write see the create button."""
    found = load_team(team, scope="sites:read")
    return render(LIST_PAGE, LIST_FRAGMENT, **sites_context(found))


@bp.route("/t/<team>/sites/new", methods=["GET", "POST"])
@login_required
def new_site(team: str) -> Response:
    """Add a site; its settings page (with the snippet) comes next."""
    found = load_team(team, scope="sites:read")
    actor().require(found, "sites:write", missing="Team")
    context = {"team": found, "timezones": timezone_choices()}
    if request.method == "GET":
        form = initial({"timezone": "UTC"})
        return render(NEW_PAGE, NEW_FRAGMENT, form=form, errors={}, **context)
    fields = Fields(request.form)
    values = _site_fields(fields)
    try:
        fields.check()
        site = sites.create_site(actor(), found, **values)
        db.session.commit()
    except PulseError as error:
        return failed(error, NEW_PAGE, NEW_FRAGMENT, request.form, **context)
    return navigate(
        url_for("dashboard.site_settings", team=found.slug, site_id=site.id),
        f"Site {site.name} created. Paste the tracking snippet into your pages.",
    )


@bp.route("/t/<team>/sites/<id:site_id>", methods=["GET", "POST"])
@login_required
def site_settings(team: str, site_id: int) -> Response:
    """Name, domain, allowed origins, time zone; the tracking snippet; the site's API keys."""
    found = load_team(team, scope="sites:read")
    site = team_site(found, site_id)
    if request.method == "GET":
        context = site_context(found, site)
        return render(SITE_PAGE, SITE_FRAGMENT, form=site_form(site), errors={}, **context)
    fields = Fields(request.form)
    values = _site_fields(fields)
    try:
        fields.check()
        if not values["allowed_origins"]:  # as on creation: the site's own https origin
            values["allowed_origins"] = [f"https://{sites.normalise_domain(values['domain'])}"]
        sites.update_site(actor(), site, values)
        db.session.commit()
    except PulseError as error:
        return failed(
            error, SITE_PAGE, SITE_FRAGMENT, request.form, lambda: site_context(found, site)
        )
    return finish(
        "Site settings saved.",
        url_for("dashboard.site_settings", team=found.slug, site_id=site.id),
        SITE_PAGE,
        SITE_FRAGMENT,
        form=site_form(site),
        errors={},
        **site_context(found, site),
    )


@bp.route("/t/<team>/sites/<id:site_id>/delete", methods=["GET", "POST"])
@login_required
def delete_site(team: str, site_id: int) -> Response:
    """Delete a site and its statistics, after typing its domain."""
    found = load_team(team, scope="sites:read")
    site = team_site(found, site_id)
    actor().require(found, "sites:delete", missing="Team")
    site_url = url_for("dashboard.site_settings", team=found.slug, site_id=site.id)
    context = confirm_context(
        title=f"Delete the site {site.name}?",
        message="Its statistics and the API keys bound to it go too. This cannot be undone.",
        action=url_for("dashboard.delete_site", team=found.slug, site_id=site.id),
        button="Delete this site",
        cancel_url=site_url,
        target="closest .confirm",
        require_text=site.domain,
    )
    if request.method == "GET":
        return render(CONFIRM_PAGE, CONFIRM_FRAGMENT, form=initial(), errors={}, **context)
    name = site.name
    try:
        if request.form.get("confirm", "").strip().lower() != site.domain:
            fields = Fields(request.form)
            fields.error("confirm", f"Type {site.domain} to confirm.")
            fields.check()
        sites.delete_site(actor(), site)
        db.session.commit()
    except PulseError as error:
        return failed(error, CONFIRM_PAGE, CONFIRM_FRAGMENT, request.form, **context)
    return navigate(url_for("dashboard.sites", team=found.slug), f"Site {name} deleted.")
