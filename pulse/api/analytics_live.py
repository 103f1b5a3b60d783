"""Live data as Server-Sent Events, one agent's drill-down, and anomalies.

`GET /api/v1/sites/<id>/stream` (aliases: the team path, seed 002's `/api/v1/stream`,
and seed 000's `/api/v1/live` when asked with `Accept: text/event-stream`) sends each
new event of the site as `id: <cursor>` + `data: <json>`, a `: heartbeat` comment
every STREAM_HEARTBEAT_SECONDS (15), and `retry:`; it ends after STREAM_MAX_SECONDS
(300) with an `event: reconnect`, and the browser reconnects with `Last-Event-ID`,
from which the events it missed (up to 10 minutes) are replayed.

Deployment: a stream occupies its worker thread for its whole life. Under gunicorn's
default sync workers each open stream holds a whole worker (which gunicorn kills at its
30 s timeout, so there a stream lasts 25 s); run `gunicorn -k gthread --threads 16`
(or gevent) when dashboards stay open. Workers see each other's events through Redis
pub/sub when REDIS_URL is set.

EventSource cannot send headers, so the stream also accepts the signed-in session
cookie and an API key in the query string (`key`, `api_key`, `token` or `k`). Keys
are looked up by their hash and compared in constant time; Pulse never logs query
strings, but proxies (and the development server's access log) may: prefer the session
cookie in browsers.
"""

from __future__ import annotations

from flask import Response, current_app, g, request
from redis.exceptions import RedisError

from pulse.accounts import api_keys
from pulse.accounts.actor import Actor
from pulse.analytics import agents, anomalies, stream
from pulse.analytics.query import parse_query
from pulse.api import analytics_schemas as schemas
from pulse.api import bp
from pulse.api.analytics import (
    COMMON,
    INTERVAL,
    SCOPE,
    SITE,
    TEAM,
    _answer,
    _op,
    _site,
)
from pulse.api.routing import operation
from pulse.errors import Forbidden, ServiceUnavailable, Unauthorized, ValidationFailed

QUERY_KEYS = ("key", "api_key", "token", "k")
STREAM_PARAMS = [
    (name, "string", "API key, for EventSource (which cannot send headers)") for name in QUERY_KEYS
] + [("lastEventId", "string", "Resume after this event (as the Last-Event-ID header)")]
# A sync worker (no threads) is held by its stream and killed at gunicorn's 30 s timeout.
SYNC_MAX_SECONDS = 25.0
AGENT_LIMIT = [("limit", "integer", "Rows (1-1000, default 100)")]


def wants_stream() -> bool:
    """Whether the caller asked for Server-Sent Events (as EventSource always does)."""
    return "text/event-stream" in request.headers.get("Accept", "")


def stream_actor(actor: Actor | None) -> Actor:
    """The caller of a stream: header key or session, else an API key in the query string."""
    if actor is not None:
        return actor
    secret = next((request.args[n] for n in QUERY_KEYS if request.args.get(n)), None)
    key = api_keys.authenticate(secret) if secret else None
    if key is None:
        raise Unauthorized(
            "Sign in or send an API key.", headers={"WWW-Authenticate": 'Bearer realm="pulse"'}
        )
    if SCOPE not in key.scopes:
        raise Forbidden(
            f"Insufficient permissions. Required scope: {SCOPE}", extra={"required_scope": SCOPE}
        )
    g.actor = Actor(api_key=key)
    return g.actor


def stream_response(actor: Actor | None, site_id: int | None, team: str | None) -> Response:
    """The SSE response of a site's new events; every check happens before it starts."""
    site = _site(stream_actor(actor), site_id, team)
    query = parse_query(site, request.args, classification=None)
    try:
        matches = stream.matcher(query)
    except ValueError as exc:
        raise ValidationFailed(
            "Invalid query parameters.", errors={str(exc): ["Not available on the stream."]}
        ) from exc
    last = request.headers.get("Last-Event-ID") or request.args.get("lastEventId")
    backlog = stream.replay(query, stream.parse_cursor(last))
    config = current_app.config
    try:
        subscription = stream.Subscription(site.id, config.get("REDIS_URL"))
    except (RedisError, OSError) as exc:
        raise ServiceUnavailable("The live stream is unavailable; try again.") from exc
    lifetime = float(config.get("STREAM_MAX_SECONDS", 300))
    if not request.environ.get("wsgi.multithread", False):
        lifetime = min(lifetime, SYNC_MAX_SECONDS)
    body = stream.sse(
        subscription,
        matches,
        backlog=backlog,
        heartbeat=float(config.get("STREAM_HEARTBEAT_SECONDS", 15)),
        lifetime=lifetime,
        retry_ms=int(config.get("STREAM_RETRY_MS", 3000)),
    )
    return Response(
        body,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@operation(
    bp,
    SITE + "/stream",
    aliases=[TEAM + "/stream", "/api/v1/stream"],
    summary="Live event stream (Server-Sent Events) of the site's new events",
    tag="analytics",
    auth="optional",
    scope=SCOPE,
    errors=(404, 422, 503),
    params=COMMON + STREAM_PARAMS,
)
def analytics_stream(actor: Actor | None, site_id: int | None = None, team: str | None = None):
    """`text/event-stream`: each event as `id:` and `data:` (JSON: id, ts, name, path,
    hostname, label, agent, country, browser, os, device, channel, source, referrer, utm_*).
    All traffic by default (`classification` narrows it); filters other than entry/exit
    page and custom properties apply. Heartbeat comments every 15 s; the stream ends
    after 5 minutes and the client reconnects with Last-Event-ID, missing nothing.
    """
    return stream_response(actor, site_id, team)


@_op(
    "/agents/<name>",
    "One agent or bot: the pages it read, when, and its trend",
    schemas.AgentOut,
    "/api/v1/agents/<name>",
    params=AGENT_LIMIT + INTERVAL,
)
def analytics_agent(actor: Actor, name: str, site_id: int | None = None, team: str | None = None):
    """404 for a name the site has never seen; classification defaults to agent,bot."""
    return _answer(
        actor,
        site_id,
        team,
        lambda q: agents.agent(q, name[:100]),
        classification=("agent", "bot"),
        limit=100,
    )


@_op(
    "/anomalies",
    "Traffic spikes and drops against the same hour of earlier weeks; agent-share spikes",
    schemas.AnomaliesOut,
    "/analytics/anomalies",
    params=INTERVAL,
)
def analytics_anomalies(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Hourly (up to 7 days) or daily buckets against a median/MAD baseline of 4 weeks,
    plus seed 002's anomaly flags on the comparison with the previous period."""
    return _answer(actor, site_id, team, anomalies.anomalies)
