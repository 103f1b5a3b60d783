"""The home redirect, the teams list, team settings, deleting and leaving a team."""

from __future__ import annotations

from flask import Response, redirect, request, session, url_for
from flask_login import current_user

from pulse.dashboard import bp
from pulse.dashboard.contexts import confirm_context, teams_context
from pulse.dashboard.forms import Fields, initial
from pulse.dashboard.web import (
    TEAM_SESSION_KEY,
    actor,
    failed,
    finish,
    load_team,
    login_required,
    navigate,
    remembered_team,
    render,
)
from pulse.errors import PulseError, ValidationFailed
from pulse.extensions import db
from pulse.models import Team
from pulse.teams import service as teams

TEAMS_PAGE, TEAMS_FRAGMENT = "dashboard/teams/page.html", "dashboard/teams/_fragment.html"
SETTINGS_PAGE = "dashboard/team_settings/page.html"
SETTINGS_FRAGMENT = "dashboard/team_settings/_fragment.html"
CONFIRM_PAGE, CONFIRM_FRAGMENT = "dashboard/confirm/page.html", "dashboard/confirm/_fragment.html"


@bp.get("/")
def index() -> Response:
    """The current team's sites; a first-team form for someone without a team."""
    if not current_user.is_authenticated:
        return redirect(url_for("dashboard.sign_in"))
    team = remembered_team()
    if team is None:
        return render(TEAMS_PAGE, TEAMS_FRAGMENT, form=initial(), errors={}, **teams_context())
    return redirect(url_for("dashboard.sites", team=team.slug))


@bp.route("/teams", methods=["GET", "POST"], endpoint="teams")
@login_required
def teams_page() -> Response:
    """Your teams, and a form to create one (you become its owner)."""
    if request.method == "GET":
        return render(TEAMS_PAGE, TEAMS_FRAGMENT, form=initial(), errors={}, **teams_context())
    fields = Fields(request.form)
    name = fields.text("name", required=True)
    try:
        fields.check()
        team = teams.create_team(actor(), name)
        db.session.commit()
    except PulseError as error:
        return failed(error, TEAMS_PAGE, TEAMS_FRAGMENT, request.form, teams_context)
    session[TEAM_SESSION_KEY] = team.id
    return navigate(
        url_for("dashboard.sites", team=team.slug), f"Team {team.name} created. Add a site next."
    )


@bp.get("/t/<team>")
@login_required
def team_home(team: str) -> Response:
    """A team's address leads to its sites."""
    found = load_team(team)
    return redirect(url_for("dashboard.sites", team=found.slug))


def _settings_form(team: Team):
    return initial({"name": team.name, "slug": team.slug})


@bp.route("/t/<team>/settings", methods=["GET", "POST"])
@login_required
def team_settings(team: str) -> Response:
    """Rename the team or change its address; owners also see the delete step."""
    found = load_team(team)
    if request.method == "GET":
        return render(
            SETTINGS_PAGE, SETTINGS_FRAGMENT, team=found, form=_settings_form(found), errors={}
        )
    fields = Fields(request.form)
    name = fields.text("name", required=True)
    slug = fields.text("slug", required=True, max_length=64).lower()
    old_slug = found.slug
    try:
        fields.check()
        teams.update_team(actor(), found, {"name": name, "slug": slug})
        db.session.commit()
    except PulseError as error:
        return failed(error, SETTINGS_PAGE, SETTINGS_FRAGMENT, request.form, team=found)
    url = url_for("dashboard.team_settings", team=found.slug)
    if found.slug != old_slug:
        return navigate(url, "Team settings saved. Its address changed.")
    return finish(
        "Team settings saved.",
        url,
        SETTINGS_PAGE,
        SETTINGS_FRAGMENT,
        team=found,
        form=_settings_form(found),
        errors={},
    )


@bp.route("/t/<team>/delete", methods=["GET", "POST"])
@login_required
def delete_team(team: str) -> Response:
    """Owners only, after typing the team's address: every site and key goes with it."""
    found = load_team(team)
    actor().require(found, "teams:delete", missing="Team")
    settings_url = url_for("dashboard.team_settings", team=found.slug)
    context = confirm_context(
        title=f"Delete the team {found.name}?",
        message=(
            "This deletes the team, its sites, their statistics and its API keys. "
            "It cannot be undone."
        ),
        action=url_for("dashboard.delete_team", team=found.slug),
        button="Delete this team",
        cancel_url=settings_url,
        target="closest .confirm",
        cancel_hx=settings_url,
        cancel_target="#team-settings",
        require_text=found.slug,
    )
    if request.method == "GET":
        return render(CONFIRM_PAGE, CONFIRM_FRAGMENT, form=initial(), errors={}, **context)
    name = found.name
    try:
        if request.form.get("confirm", "").strip() != found.slug:
            raise ValidationFailed(errors={"confirm": [f"Type {found.slug} to confirm."]})
        teams.delete_team(actor(), found)
        db.session.commit()
    except PulseError as error:
        return failed(error, CONFIRM_PAGE, CONFIRM_FRAGMENT, request.form, **context)
    session.pop(TEAM_SESSION_KEY, None)
    return navigate(url_for("dashboard.index"), f"Team {name} deleted.")


@bp.post("/t/<team>/leave")
@login_required
def leave_team(team: str) -> Response:
    """Leave a team (its last owner cannot)."""
    found = load_team(team)
    me = actor()
    try:
        teams.remove_member(me, teams.get_membership(me, found, me.user_id or 0))
        db.session.commit()
    except PulseError as error:
        return failed(
            error,
            SETTINGS_PAGE,
            SETTINGS_FRAGMENT,
            _settings_form(found),
            team=found,
        )
    session.pop(TEAM_SESSION_KEY, None)
    return navigate(url_for("dashboard.index"), f"You left {found.name}.")
