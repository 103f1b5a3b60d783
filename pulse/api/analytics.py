"""Analytics reports as JSON: parse a Query, call `pulse.analytics`, wrap the result.

Canonical paths are `/api/v1/sites/<id>/...`. Seed aliases: 000's team-scoped
`/api/v1/teams/<team>/analytics/<id>/...` and its site-less `/api/v1/stats`,
`/pages`, `/agents`, `/live`; 002's `/stats`, `/insights`, `/breakdown`, `/pages`,
`/live`; 001's `/analytics/*`. Site-less paths name the site in `?site=` (or
`site_id`, `siteId`, `project`, `project_id`, `site_key`): an id, a site key, a
name or a domain; a key limited to one site, or a caller with one site, may omit it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import request

from pulse.accounts.actor import Actor
from pulse.analytics import agents, anomalies, breakdowns, raw, reports, stream
from pulse.analytics.query import Query, parse_query
from pulse.api import analytics_schemas as schemas
from pulse.api import bp
from pulse.api import serializers as out
from pulse.api.routing import operation
from pulse.errors import NotFound, Unauthorized, ValidationFailed
from pulse.models import Site
from pulse.sites import service as sites
from pulse.teams.service import get_team

SCOPE = "stats:read"
SITE = "/api/v1/sites/<id:site_id>"
TEAM = "/api/v1/teams/<team>/analytics/<id:site_id>"
SITE_PARAMS = ("site", "site_id", "siteId", "project", "project_id", "site_key", "siteKey")
ERRORS = (404, 422)

RANGE_PARAMS = [
    ("range", "integer", "Hours back from now (seed 000; default 24)"),
    ("period", "string", "today, yesterday, 24h, 7d, 30d, 90d, month, 12mo or all"),
    ("since", "string", "Start: date, ISO 8601 datetime (site time when naive) or epoch"),
    ("until", "string", "End: as since; a date includes that whole day"),
    ("classification", "string", "human (default), agent, bot, all, or a list (alias: label)"),
]
FILTER_PARAMS = [
    (name, "string", f"Filter on {name}; `a|b` for either, `(none)` for no value")
    for name in (
        "page",
        "entry_page",
        "exit_page",
        "hostname",
        "source",
        "channel",
        "referrer",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "country",
        "browser",
        "os",
        "device",
        "event",
        "agent",
    )
] + [("prop.<key>", "string", "Filter on a custom property's value")]
SITE_PARAM = [("site", "string", "Site-less paths: the site's id, key, name or domain")]
COMMON = RANGE_PARAMS + FILTER_PARAMS + SITE_PARAM
LIMIT = [("limit", "integer", "Rows (1-1000, default 10)")]
COMPARE = [("compare", "string", "`previous` (default on stats) or `false`: the previous period")]
INTERVAL = [("interval", "string", "hour, day, week or month (alias: groupBy)")]


def _site(actor: Actor, site_id: int | None, team: str | None) -> Site:
    """The site of a path (checked against the team of team-scoped paths) or of `?site=`."""
    if site_id is None:
        ident = next((request.args[n] for n in SITE_PARAMS if request.args.get(n)), None)
        return sites.find_site(actor, ident, SCOPE)
    if team is not None:
        owner = get_team(actor, team, scope=SCOPE)
        site = sites.get_site(actor, site_id, scope=SCOPE)
        if site.team_id != owner.id:
            raise NotFound("Site not found.")
        return site
    return sites.get_site(actor, site_id, scope=SCOPE)


def _answer(
    actor: Actor,
    site_id: int | None,
    team: str | None,
    report: Callable[[Query], dict[str, Any]],
    **defaults: Any,
) -> dict[str, Any]:
    site = _site(actor, site_id, team)
    query = parse_query(
        site, request.args, first_seen=lambda: raw.first_event_at(site.id), **defaults
    )
    return out.envelope({"query": query.describe(), **report(query)})


def _paths(suffix: str, *extra: str) -> dict[str, Any]:
    return {"rule": SITE + suffix, "aliases": [TEAM + suffix, *extra]}


def _op(
    suffix: str,
    summary: str,
    response: type[Any],
    *extra: str,
    params: list[tuple[str, str, str]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    paths = _paths(suffix, *extra)
    return operation(
        bp,
        paths["rule"],
        aliases=paths["aliases"],
        summary=summary,
        tag="analytics",
        scope=SCOPE,
        response=response,
        errors=ERRORS,
        params=COMMON + (params if params is not None else LIMIT),
        # Seed 002 lets a read-only client (a status page, a spreadsheet) put the key
        # in the query string: `?token=` (also `key`, `api_key`, `k`).
        query_key=True,
    )


@_op(
    "/stats",
    "Visitors, pageviews, sessions, bounce rate, duration; humans vs agents vs bots",
    schemas.StatsOut,
    "/api/v1/stats",
    "/analytics/overview",
    params=COMPARE + INTERVAL,
)
def analytics_stats(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Headline numbers with seed 002's `metrics` map against the previous period
    (`compare=false` leaves it out); `groupBy` adds a series."""
    return _answer(actor, site_id, team, reports.stats, compare=True)


@_op(
    "/insights",
    "Period-over-period comparison (seed 002)",
    schemas.StatsOut,
    "/api/v1/insights",
    params=INTERVAL,
)
def analytics_insights(actor: Actor, site_id: int | None = None, team: str | None = None):
    """The stats with `compare=previous` always on."""
    return _answer(actor, site_id, team, anomalies.insights, compare=True)


@_op("/timeseries", "Counts per hour, day, week or month", schemas.TimeseriesOut, params=INTERVAL)
def analytics_timeseries(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Buckets follow the site's calendar; empty buckets are zeros."""
    return _answer(actor, site_id, team, reports.timeseries)


@_op(
    "/pages",
    "Top pages (type=entry or exit: entry or exit pages)",
    schemas.BreakdownOut,
    "/api/v1/pages",
    "/analytics/pages/top",
    SITE + "/pages/top",
    params=LIMIT + [("type", "string", "top (default), entry or exit")],
)
def analytics_pages(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Pages by visitors; seed 002's entry/exit stats with `type`."""
    kinds = {"top": breakdowns.top_pages, "entry": breakdowns.entry_pages}
    kinds["exit"] = breakdowns.exit_pages
    kind = request.args.get("type", "top")
    if kind not in kinds:
        raise ValidationFailed(
            "Invalid query parameters.", errors={"type": ["Use top, entry or exit."]}
        )
    return _answer(actor, site_id, team, kinds[kind])


@_op("/pages/entry", "Entry (landing) pages", schemas.BreakdownOut)
def analytics_entry_pages(actor: Actor, site_id: int | None = None, team: str | None = None):
    return _answer(actor, site_id, team, breakdowns.entry_pages)


@_op("/pages/exit", "Exit pages", schemas.BreakdownOut)
def analytics_exit_pages(actor: Actor, site_id: int | None = None, team: str | None = None):
    return _answer(actor, site_id, team, breakdowns.exit_pages)


@_op("/sources", "Traffic sources", schemas.BreakdownOut, "/analytics/sources")
def analytics_sources(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Sessions by source (Google, Hacker News, ChatGPT ...)."""
    return _answer(actor, site_id, team, breakdowns.sources)


@_op("/referrers", "Referring hosts", schemas.BreakdownOut)
def analytics_referrers(actor: Actor, site_id: int | None = None, team: str | None = None):
    return _answer(actor, site_id, team, breakdowns.referrers)


@_op("/channels", "Channels (organic search, social, direct ...)", schemas.BreakdownOut)
def analytics_channels(actor: Actor, site_id: int | None = None, team: str | None = None):
    return _answer(actor, site_id, team, breakdowns.channels)


@_op(
    "/utm",
    "Campaign tags",
    schemas.BreakdownOut,
    params=LIMIT + [("field", "string", "source (default), medium, campaign, term or content")],
)
def analytics_utm(actor: Actor, site_id: int | None = None, team: str | None = None):
    field = request.args.get("field") or "utm_source"
    return _answer(actor, site_id, team, lambda q: breakdowns.utm(q, field))


@_op("/geo", "Countries", schemas.BreakdownOut, SITE + "/countries", "/analytics/geo")
def analytics_geo(actor: Actor, site_id: int | None = None, team: str | None = None):
    return _answer(actor, site_id, team, breakdowns.countries)


@_op("/devices", "Device classes", schemas.BreakdownOut)
def analytics_devices(actor: Actor, site_id: int | None = None, team: str | None = None):
    return _answer(actor, site_id, team, breakdowns.devices)


@_op("/browsers", "Browsers", schemas.BreakdownOut)
def analytics_browsers(actor: Actor, site_id: int | None = None, team: str | None = None):
    return _answer(actor, site_id, team, breakdowns.browsers)


@_op("/os", "Operating systems", schemas.BreakdownOut)
def analytics_os(actor: Actor, site_id: int | None = None, team: str | None = None):
    return _answer(actor, site_id, team, breakdowns.operating_systems)


@_op(
    "/agents",
    "What AI agents and bots read: hits, pages, first and last seen, trend",
    schemas.AgentsOut,
    "/api/v1/agents",
    params=[("limit", "integer", "Rows (1-1000, default 100)")] + INTERVAL,
)
def analytics_agents(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Seed 000's detected agents; the classification defaults to agent,bot here."""
    return _answer(actor, site_id, team, agents.agents, classification=("agent", "bot"), limit=100)


@_op(
    "/breakdown",
    "Top values of any dimension or custom property",
    schemas.BreakdownOut,
    "/api/v1/breakdown",
    params=LIMIT
    + [("property", "string", "A dimension (page, source, country ...) or prop.<key>")],
)
def analytics_breakdown(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Seed 002's breakdown: `property` (alias `dimension`, `by`) names what to count by."""
    name = next(
        (request.args[n] for n in ("property", "dimension", "by") if request.args.get(n)), "page"
    )
    return _answer(actor, site_id, team, lambda q: breakdowns.breakdown(q, name))


@_op(
    "/sessions/daily",
    "Sessions per day",
    schemas.DailySessionsOut,
    "/analytics/sessions/daily",
    params=[],
)
def analytics_daily_sessions(actor: Actor, site_id: int | None = None, team: str | None = None):
    return _answer(actor, site_id, team, reports.daily_sessions)


@_op(
    "/engagement",
    "Sessions by engagement score",
    schemas.EngagementOut,
    "/analytics/engagement",
    params=[],
)
def analytics_engagement(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Buckets bounce, low, medium, high (and unscored: sessions not ended yet)."""
    return _answer(actor, site_id, team, reports.engagement)


@operation(
    bp,
    SITE + "/realtime",
    aliases=[
        TEAM + "/realtime",
        SITE + "/live",
        TEAM + "/live",
        "/api/v1/live",
        "/analytics/realtime",
    ],
    summary="Visitors in the last five minutes and the pages they are on (or, as SSE, the stream)",
    tag="analytics",
    auth="optional",
    scope=SCOPE,
    response=schemas.RealtimeOut,
    errors=ERRORS,
    params=COMMON + LIMIT,
)
def analytics_realtime(actor: Actor | None, site_id: int | None = None, team: str | None = None):
    """A snapshot (range parameters are ignored). With `Accept: text/event-stream` (seed
    000's `/api/v1/live` is an EventSource) this is the site's event stream instead."""
    from pulse.api import analytics_live as live

    if live.wants_stream():
        return live.stream_response(actor, site_id, team)
    if actor is None:
        raise Unauthorized(
            "Sign in or send an API key.", headers={"WWW-Authenticate": 'Bearer realm="pulse"'}
        )
    return _answer(actor, site_id, team, stream.live)
