"""Explorers as JSON: raw events, sessions, one session, properties, heatmap, POST /query.

Same paths as the reports (`/api/v1/sites/<id>/...`, the team alias, and seed
002's site-less paths with `?site=`); seed 000's `/api/v1/session/<id>` finds the
site from the session itself and answers 404 for a session the caller cannot read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request
from werkzeug.datastructures import MultiDict

from pulse.accounts.actor import Actor
from pulse.analytics import custom_query, explore, raw
from pulse.analytics import heatmap as heatmaps
from pulse.analytics.query import Query, parse_query
from pulse.api import analytics_explore_schemas as schemas
from pulse.api import bp
from pulse.api import serializers as out
from pulse.api.analytics import COMMON, ERRORS, SCOPE, SITE, SITE_PARAMS, _op, _paths, _site
from pulse.api.routing import operation
from pulse.errors import NotFound, ValidationFailed
from pulse.models import Site
from pulse.sites import service as sites

CURSOR = [("cursor", "string", "The next_cursor of the previous page (older rows)")]
EVENTS_PARAMS = [
    ("limit", "integer", "Events (1-1000, default 100)"),
    ("session_id", "string", "Only this session's events (alias: session)"),
    *CURSOR,
]
SESSIONS_PARAMS = [("limit", "integer", "Sessions (1-1000, default 50)"), *CURSOR]
HEATMAP_PARAMS = [("metric", "string", "visitors (default), pageviews or events: grid and peak")]
SESSION_LIMIT = 1000
RANGE_NAMES = ("range", "period", "since")


def _args(default_period: str | None) -> Any:
    """The request's arguments, with a default period when the endpoint wants a longer one."""
    if default_period is None or any(request.args.get(n) for n in RANGE_NAMES):
        return request.args
    args = MultiDict(request.args)
    args["period"] = default_period
    return args


def _report(
    actor: Actor,
    site_id: int | None,
    team: str | None,
    report: Callable[[Query], dict[str, Any]],
    *,
    default_period: str | None = None,
    **defaults: Any,
) -> dict[str, Any]:
    site = _site(actor, site_id, team)
    query = parse_query(
        site, _args(default_period), first_seen=lambda: raw.first_event_at(site.id), **defaults
    )
    return out.envelope({"query": query.describe(), **report(query)})


@_op(
    "/events",
    "Raw event log, newest first (seed 002)",
    schemas.EventsOut,
    "/api/v1/events",
    params=EVENTS_PARAMS,
)
def analytics_events(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Hits of the range that pass the filters; page with `cursor` (or with `since`/`until`)."""
    session = next(
        (request.args[n] for n in ("session_id", "session", "sessionId") if request.args.get(n)),
        None,
    )
    if session is not None and len(session) > 64:
        raise ValidationFailed("Invalid query parameters.", errors={"session_id": ["Too long."]})
    cursor = request.args.get("cursor") or None
    return _report(
        actor,
        site_id,
        team,
        lambda q: explore.events(q, cursor=cursor, session_id=session),
        # "All events of a session" (seed 002) should not stop at the last 24 hours.
        default_period="all" if session is not None else None,
        limit=100,
    )


@_op(
    "/sessions",
    "Sessions (visits), newest first, with their verdicts (seed 002)",
    schemas.SessionsOut,
    "/api/v1/sessions",
    params=SESSIONS_PARAMS,
)
def analytics_sessions(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Visits started in the range that pass the filters; page with `cursor`."""
    cursor = request.args.get("cursor") or None
    return _report(actor, site_id, team, lambda q: explore.sessions(q, cursor=cursor), limit=50)


@_op(
    "/sessions/distribution",
    "Session duration histogram (seed 002)",
    schemas.DistributionOut,
    "/api/v1/sessions/distribution",
    SITE + "/sessions/histogram",
    params=[],
)
def analytics_session_distribution(
    actor: Actor, site_id: int | None = None, team: str | None = None
):
    """Buckets 0-10s, 10-30s, 30-60s, 1-3m, 3-10m, 10-30m, 30m+ of visits started in the range."""
    return _report(actor, site_id, team, explore.duration_distribution)


_detail = _paths("/sessions/<session_id>", "/api/v1/session/<session_id>")


@operation(
    bp,
    _detail["rule"],
    aliases=_detail["aliases"],
    summary="One session and its events in order (seed 000)",
    tag="analytics",
    scope=SCOPE,
    response=schemas.SessionDetailOut,
    errors=ERRORS,
    params=[("limit", "integer", f"Events (1-{SESSION_LIMIT}, default {SESSION_LIMIT})")],
)
def analytics_session(
    actor: Actor, session_id: str, site_id: int | None = None, team: str | None = None
):
    """Another team's session, or one of another site on a site path, is a 404."""
    raw_limit = request.args.get("limit") or str(SESSION_LIMIT)
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= SESSION_LIMIT:
        raise ValidationFailed(
            "Invalid query parameters.",
            errors={"limit": [f"An integer from 1 to {SESSION_LIMIT}."]},
        )
    site: Site
    if site_id is None and team is None and any(request.args.get(n) for n in SITE_PARAMS):
        site = _site(actor, None, None)
    elif site_id is None and team is None:
        owner = explore.site_of_session(session_id) if len(session_id) <= 64 else None
        if owner is None:
            raise NotFound("Session not found.")
        try:
            site = sites.get_site(actor, owner, scope=SCOPE)
        except NotFound:
            # The same answer as for no such session: ids of other teams stay secret.
            raise NotFound("Session not found.") from None
    else:
        site = _site(actor, site_id, team)
    zone = explore.site_zone(site.timezone)
    detail = explore.session_detail(site.id, session_id, zone, int(raw_limit))
    return out.envelope(detail)


@_op(
    "/properties",
    "Event names with counts, property keys with top values (default period 30d)",
    schemas.PropertiesOut,
    "/api/v1/properties",
    params=[],
)
def analytics_properties(actor: Actor, site_id: int | None = None, team: str | None = None):
    """What to build funnels and breakdowns from: names and keys seen in the range."""
    return _report(actor, site_id, team, explore.properties, default_period="30d")


@_op(
    "/properties/received",
    "Property keys received, per event name (default period 30d)",
    schemas.PropertiesReceivedOut,
    "/api/v1/properties/received",
    params=[],
)
def analytics_properties_received(
    actor: Actor, site_id: int | None = None, team: str | None = None
):
    """For each event name: its count and the keys it carried, how often, of which types."""
    return _report(actor, site_id, team, explore.properties_received, default_period="30d")


@_op(
    "/heatmap",
    "Day of week x hour grid in the site's time zone, with the peak (default period 30d)",
    schemas.HeatmapOut,
    "/api/v1/heatmap",
    params=HEATMAP_PARAMS,
)
def analytics_heatmap(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Empty `heatmap` and a null `peak` mean no data in the range (seed 002's flag)."""
    metric = request.args.get("metric") or "visitors"
    return _report(
        actor, site_id, team, lambda q: heatmaps.heatmap(q, metric), default_period="30d"
    )


_query = _paths("/query", "/api/v1/query")


@operation(
    bp,
    _query["rule"],
    methods=["POST"],
    aliases=_query["aliases"],
    summary="Flexible query: metrics by group_by, filtered and ordered (seed 002)",
    tag="analytics",
    scope=SCOPE,
    body=schemas.QueryIn,
    response=schemas.QueryRowsOut,
    errors=ERRORS,
    params=[p for p in COMMON if p[0] == "site"],
)
def analytics_query(
    actor: Actor, body: schemas.QueryIn, site_id: int | None = None, team: str | None = None
):
    """`rows` carry the group_by fields and the metrics by the names asked (seed 002)."""
    if site_id is None and body.project is not None:
        site = sites.find_site(actor, str(body.project), SCOPE, field="project")
    else:
        site = _site(actor, site_id, team)
    spec = body.model_dump(exclude={"project"})
    result = custom_query.run(site, spec, first_seen=lambda: raw.first_event_at(site.id))
    return out.envelope(result)
