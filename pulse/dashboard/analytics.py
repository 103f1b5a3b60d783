"""Analytics pages: a site's overview, realtime and agents, each panel an htmx partial.

Pages answer fast with the layout, the filter bar and empty panels; each panel then
loads itself (`hx-trigger="load"`), so one slow report never holds up the others.
The state lives in the URL: links and the range form swap `#report` and push the
URL, so a link can be shared and back/forward restore the same view.
"""

from __future__ import annotations

from flask import Response, abort, current_app, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from pulse.analytics import raw
from pulse.dashboard import agent_panels, bp, panels
from pulse.dashboard.contexts import team_site
from pulse.dashboard.reporting import Report, load_report
from pulse.dashboard.web import load_team, login_required, render
from pulse.errors import NotFound
from pulse.sites import service as sites

SCOPE = "stats:read"
SITE = "/t/<team>/sites/<id:site_id>"
AGENTS = ("agent", "bot")


def site_report(
    team: str,
    site_id: int,
    classification: tuple[str, ...] | None = ("human",),
    limit: int = 10,
    keep: tuple[str, ...] = (),
) -> Report:
    """The team and site of the URL (404 for another team's) and the parsed report state."""
    found = load_team(team, scope="teams:read")
    site = team_site(found, site_id, SCOPE)
    return load_report(found, site, classification=classification, limit=limit, keep=keep)


def page_context(report: Report, section: str) -> dict[str, object]:
    """What every analytics page shows around its panels (the snippet while there is no data)."""
    has_data = raw.first_event_at(report.site.id) is not None
    return {
        "report": report,
        "team": report.team,
        "site": report.site,
        "section": section,
        "has_data": has_data,
        "snippet": None if has_data else sites.tracking_snippet(report.site),
        "stream": stream_url(report),
    }


def stream_url(report: Report) -> str | None:
    """The site's Server-Sent Events stream, when the API offers one (else the page polls)."""
    path = f"/api/v1/sites/{report.site.id}/stream"
    adapter = current_app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(path, method="GET")
    except HTTPException:
        return None
    return path if endpoint else None


def partial_response(template: str, **context: object) -> Response:
    """A panel's markup alone (it is only ever fetched by htmx, or opened by hand)."""
    return make_response(render_template(template, **context))


@bp.get(SITE + "/overview", endpoint="site_overview")
@login_required
def site_overview(team: str, site_id: int) -> Response:
    """The overview: KPIs and chart, then pages, sources, countries, devices, traffic split."""
    report = site_report(team, site_id)
    context = page_context(report, "overview")
    return render(
        "dashboard/analytics/page.html",
        "dashboard/analytics/_report.html",
        panels=panels.PANELS,
        **context,
    )


@bp.get(SITE + "/overview/summary", endpoint="overview_summary")
@login_required
def overview_summary(team: str, site_id: int) -> Response:
    """KPI cards with the change against the previous period, and the time series chart."""
    report = site_report(team, site_id)
    return partial_response(
        "dashboard/analytics/_summary.html", report=report, **panels.summary(report)
    )


@bp.get(SITE + "/overview/panels/<name>", endpoint="overview_panel")
@login_required
def overview_panel(team: str, site_id: int, name: str) -> Response:
    """One panel of the overview; `tab` picks its dimension."""
    if name not in panels.PANELS:
        abort(404)
    report = site_report(team, site_id)
    if name == "traffic":
        return partial_response(
            "dashboard/analytics/_traffic.html", report=report, **panels.traffic(report)
        )
    context = panels.breakdown_panel(report, name, request.args.get("tab"))
    return partial_response("dashboard/analytics/_panel.html", report=report, **context)


@bp.get(SITE + "/realtime", endpoint="site_realtime")
@login_required
def site_realtime(team: str, site_id: int) -> Response:
    """Who is on the site now; the numbers refresh every five seconds."""
    report = site_report(team, site_id)
    return render(
        "dashboard/analytics/realtime.html",
        "dashboard/analytics/_realtime_report.html",
        **page_context(report, "realtime"),
    )


@bp.get(SITE + "/realtime/now", endpoint="realtime_now")
@login_required
def realtime_now(team: str, site_id: int) -> Response:
    """The last five minutes, polled by the realtime page."""
    report = site_report(team, site_id)
    return partial_response(
        "dashboard/analytics/_realtime.html",
        report=report,
        stream=stream_url(report),
        **panels.realtime(report),
    )


@bp.get(SITE + "/agents", endpoint="site_agents")
@login_required
def site_agents(team: str, site_id: int) -> Response:
    """Every AI agent and bot: what it read, when, and the trend; `agent=` shows one."""
    report = site_report(team, site_id, classification=AGENTS, limit=50)
    return render(
        "dashboard/analytics/agents.html",
        "dashboard/analytics/_agents_report.html",
        **page_context(report, "agents"),
    )


@bp.get(SITE + "/agents/list", endpoint="agents_list")
@login_required
def agents_list(team: str, site_id: int) -> Response:
    """The agents table (or, with one `agent=`, what that agent read and when)."""
    report = site_report(team, site_id, classification=AGENTS, limit=50)
    named = [f for f in report.query.filters if f.dimension.name == "agent"]
    if len(named) == 1 and len(named[0].values) == 1 and named[0].values[0] is not None:
        name = str(named[0].values[0])
        try:
            detail = agent_panels.agent_detail(report, name)
        except NotFound:  # never seen on this site: say so in the panel, not as an error page
            return partial_response(
                "dashboard/analytics/_agent_unknown.html", report=report, name=name
            )
        return partial_response("dashboard/analytics/_agent.html", report=report, **detail)
    return partial_response(
        "dashboard/analytics/_agents.html", report=report, **agent_panels.agent_list(report)
    )
