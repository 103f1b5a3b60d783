"""Explorers: sessions (list and one visit's timeline), funnels, retention and the heatmap.

Same shape as the overview: a page with the filter bar and a slot that loads the
report as a partial; every number comes from `pulse.analytics` (explore, funnel,
retention, heatmap), the functions the JSON API serves.
"""

from __future__ import annotations

from typing import Any

from flask import Response, request

from pulse.analytics import explore, funnel, heatmap, retention
from pulse.dashboard import bp
from pulse.dashboard.analytics import SITE, page_context, partial_response, site_report
from pulse.dashboard.charts import bucket_label
from pulse.dashboard.web import login_required, render
from pulse.errors import PulseError

PAGE = "dashboard/analytics/explore.html"
FRAGMENT = "dashboard/analytics/_explore_report.html"
HOURS = [f"{h:02d}" for h in range(24)]


FUNNEL_ARGS = ("step", "window", "unit")


def _explore_page(
    team: str,
    site_id: int,
    section: str,
    title: str,
    partial: str,
    keep: tuple[str, ...] = (),
    more: tuple[tuple[str, str], ...] = (),
) -> Response:
    """An explorer page: the filter bar and a slot per partial ((endpoint, title) in `more`)."""
    report = site_report(team, site_id, keep=keep)
    context = page_context(report, section)
    slots = [(partial, title), *more]
    return render(PAGE, FRAGMENT, title=title, slots=slots, **context)


@bp.get(SITE + "/sessions", endpoint="site_sessions")
@login_required
def site_sessions(team: str, site_id: int) -> Response:
    """The newest visits of the range; each opens its timeline."""
    return _explore_page(team, site_id, "sessions", "Sessions", "dashboard.sessions_list")


@bp.get(SITE + "/sessions/list", endpoint="sessions_list")
@login_required
def sessions_list(team: str, site_id: int) -> Response:
    """Fifty visits at a time; "Older sessions" continues from the cursor."""
    report = site_report(team, site_id, limit=50)
    result = explore.sessions(report.query, cursor=request.args.get("cursor") or None)
    return partial_response("dashboard/analytics/_sessions.html", report=report, **result)


@bp.get(SITE + "/sessions/<session_id>", endpoint="session_timeline")
@login_required
def session_timeline(team: str, site_id: int, session_id: str) -> Response:
    """One visit: where it came from and each event in order (404 for another site's)."""
    report = site_report(team, site_id)
    detail = explore.session_detail(report.site.id, session_id[:128], report.query.tz, 1000)
    return render(
        "dashboard/analytics/session.html",
        "dashboard/analytics/_session.html",
        **page_context(report, "sessions"),
        **detail,
    )


@bp.get(SITE + "/events", endpoint="site_events")
@login_required
def site_events(team: str, site_id: int) -> Response:
    """The raw event log, and the event names and property keys with their top values."""
    more = (("dashboard.events_properties", "Event names and properties"),)
    return _explore_page(team, site_id, "events", "Events", "dashboard.events_log", more=more)


@bp.get(SITE + "/events/log", endpoint="events_log")
@login_required
def events_log(team: str, site_id: int) -> Response:
    """Fifty events at a time, newest first; "Older events" continues from the cursor."""
    report = site_report(team, site_id, limit=50)
    result = explore.events(report.query, cursor=request.args.get("cursor") or None)
    return partial_response("dashboard/analytics/_events.html", report=report, **result)


@bp.get(SITE + "/events/properties", endpoint="events_properties")
@login_required
def events_properties(team: str, site_id: int) -> Response:
    """Event names by count, and each property key with its top values (click to filter)."""
    report = site_report(team, site_id)
    result = explore.properties(report.query)
    return partial_response("dashboard/analytics/_properties.html", report=report, **result)


@bp.get(SITE + "/heatmap", endpoint="site_heatmap")
@login_required
def site_heatmap(team: str, site_id: int) -> Response:
    """Traffic by day of the week and hour of the day, in the site's time zone."""
    return _explore_page(
        team, site_id, "heatmap", "Heatmap", "dashboard.heatmap_grid", keep=("metric",)
    )


@bp.get(SITE + "/heatmap/grid", endpoint="heatmap_grid")
@login_required
def heatmap_grid(team: str, site_id: int) -> Response:
    """The 7 x 24 grid, each cell shaded by its share of the busiest cell."""
    report = site_report(team, site_id, keep=("metric",))
    metric = request.args.get("metric") or "visitors"
    result = heatmap.heatmap(report.query, metric)
    top = max((max(row) for row in result["grid"]), default=0)
    cells = [
        [{"value": v, "level": 0 if not v else min(5, 1 + int(5 * v / (top + 1)))} for v in row]
        for row in result["grid"]
    ]
    return partial_response(
        "dashboard/analytics/_heatmap.html", report=report, cells=cells, hours=HOURS, **result
    )


def _funnel_form() -> dict[str, Any]:
    """The funnel form's values from the URL (empty steps dropped)."""
    steps = [s.strip() for s in request.args.getlist("step") if s.strip()]
    return {
        "steps": steps,
        "window": request.args.get("window") or "24",
        "unit": request.args.get("unit") or "visitor",
    }


@bp.get(SITE + "/funnels", endpoint="site_funnels")
@login_required
def site_funnels(team: str, site_id: int) -> Response:
    """Pick ordered steps (pages or events) and see how many go through, and where they drop."""
    report = site_report(team, site_id, keep=FUNNEL_ARGS)
    context = page_context(report, "funnels")
    return render(
        "dashboard/analytics/funnels.html",
        "dashboard/analytics/_funnels_report.html",
        form=_funnel_form(),
        units=funnel.UNITS,
        **context,
    )


@bp.get(SITE + "/funnels/result", endpoint="funnel_result")
@login_required
def funnel_result(team: str, site_id: int) -> Response:
    """The funnel of the steps in the URL; bad steps are explained in the panel, not a 422 page."""
    report = site_report(team, site_id, keep=FUNNEL_ARGS)
    form = _funnel_form()
    if len(form["steps"]) < funnel.MIN_STEPS:
        return partial_response(
            "dashboard/analytics/_funnel.html", report=report, result=None, error=None
        )
    try:
        hours = float(form["window"])
    except ValueError:
        hours = -1.0
    try:
        spec = funnel.make_spec(form["steps"], hours, form["unit"])
        result = funnel.funnel(report.query, spec)
    except PulseError as error:
        messages = [m for ms in (error.errors or {}).values() for m in ms] or [error.message]
        return partial_response(
            "dashboard/analytics/_funnel.html", report=report, result=None, error=messages
        )
    return partial_response(
        "dashboard/analytics/_funnel.html", report=report, result=result, error=None
    )


@bp.get(SITE + "/retention", endpoint="site_retention")
@login_required
def site_retention(team: str, site_id: int) -> Response:
    """Cohorts of identified users by first day or week, and who came back."""
    return _explore_page(
        team, site_id, "retention", "Retention", "dashboard.retention_grid", keep=("cohort",)
    )


@bp.get(SITE + "/retention/grid", endpoint="retention_grid")
@login_required
def retention_grid(team: str, site_id: int) -> Response:
    """Cohort rows, offsets as columns, and the average row."""
    report = site_report(team, site_id, keep=("cohort",))
    grain = "day" if request.args.get("cohort") == "day" else "week"
    # Without a range in the URL, retention's own default: the last 8 days or weeks.
    query, grain = retention.parse_retention(report.site, {**report.state, "cohort": grain})
    result = retention.retention(query, grain)
    for cohort in result["cohorts"]:
        cohort["label"] = bucket_label(cohort["cohort"], "day")
    return partial_response(
        "dashboard/analytics/_retention.html", report=report, grain=grain, **result
    )
