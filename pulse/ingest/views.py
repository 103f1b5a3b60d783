"""Tracking endpoints of the three seed documents, all on one write path.

Every view: find the sender (site key + Origin, or an events:write API key), read
the request facts once, prepare (validate + enrich) each item, record, answer.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pydantic
from flask import Blueprint, Response, current_app, request

from pulse.api.routing import operation, read_json_object, validation_errors
from pulse.errors import ValidationFailed
from pulse.extensions import csrf, limiter
from pulse.ingest import limits, pipeline, schemas, store
from pulse.ingest.enrich import engagement_score
from pulse.ingest.facts import read_facts
from pulse.ingest.sites import resolve_sender
from pulse.models import utcnow

bp = Blueprint("ingest", __name__)
csrf.exempt(bp)
TAG = "tracking"
GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _ingest(
    items: list[Any],
    site_ref: str | None,
    *,
    signals=None,
    behaviour=None,
) -> tuple[pipeline.Prepared, Any]:
    """The shared path; raises 4xx for the whole request, returns per-item results."""
    facts = read_facts()
    sender = resolve_sender(site_ref, facts.origin)
    limits.check_site(sender, len(items))
    prepared = pipeline.prepare(items, sender, facts, signals, behaviour)
    store.record(prepared.rows)
    return prepared, sender


def _batch_response(prepared: pipeline.Prepared) -> tuple[dict[str, Any], int]:
    if prepared.errors and not prepared.rows and not prepared.skipped:
        raise ValidationFailed(
            "No event in the request was valid.",
            errors={str(e.index): [e.message] for e in prepared.errors[:100]},
            extra={"items": [e.body() for e in prepared.errors[:100]]},
        )
    body: dict[str, Any] = {"queued": len(prepared.rows)}
    if prepared.skipped:
        body["skipped"] = prepared.skipped
    if prepared.errors:
        body["errors"] = [e.body() for e in prepared.errors[:100]]
    return body, 202


def _site_field(body: dict[str, Any]) -> str | None:
    for name in ("site", "token", "site_key", "siteKey", "project", "k"):
        value = body.get(name)
        if isinstance(value, str):
            return value
    return request.args.get("site") or request.args.get("k")


def _pop_site(body: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in body.items()
        if k not in ("site", "token", "site_key", "siteKey", "project")
    }


# Seed 002 -------------------------------------------------------------------------


@operation(
    bp,
    "/api/v1/track",
    methods=["POST"],
    summary="Track one event",
    tag=TAG,
    auth="none",
    body_doc=schemas.TrackEvent,
    status=202,
    envelope="none",
    errors=(401, 403, 404, 413, 422, 429),
)
@limiter.limit(limits.per_ip("event"), exempt_when=limits.exempt)
def track():
    """202 `{"queued": true}`; the event is stored or durably buffered."""
    body = read_json_object()
    prepared, _ = _ingest([_pop_site(body)], _site_field(body))
    if prepared.errors:
        error = prepared.errors[0]
        raise ValidationFailed(error.message, code=error.error, errors=error.errors)
    return {"queued": True, "skipped": prepared.skipped}, 202


@operation(
    bp,
    "/api/v1/track/batch",
    methods=["POST"],
    summary="Track up to 100 events",
    tag=TAG,
    auth="none",
    body_doc=schemas.Batch,
    status=202,
    envelope="none",
    errors=(401, 403, 404, 413, 422, 429),
)
@limiter.limit(limits.per_ip("batch"), exempt_when=limits.exempt)
def track_batch():
    """202 `{"queued": n, "errors": [...]}`: invalid items are reported, valid ones kept."""
    body = read_json_object()
    batch = _parse_batch(body)
    prepared, _ = _ingest(
        batch.events,
        batch.site or _site_field(body),
        signals=batch.signals,
        behaviour=batch.behaviour,
    )
    return _batch_response(prepared)


def _parse_batch(body: dict[str, Any]) -> schemas.Batch:
    try:
        return schemas.Batch.model_validate(body)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(errors=validation_errors(exc)) from exc


# Seed 000 -------------------------------------------------------------------------


@operation(
    bp,
    "/api/v1/events",
    methods=["POST"],
    summary="Ingest events: pageview, detection, session_end",
    tag=TAG,
    auth="none",
    body_doc=schemas.Batch,
    status=202,
    envelope="none",
    errors=(401, 403, 404, 422, 429),
)
@limiter.limit(limits.per_ip("batch"), exempt_when=limits.exempt)
def ingest_events():
    """One event (`type`) or `{"events": [...]}`, with the site key or an API key."""
    body = read_json_object()
    if isinstance(body.get("events"), list):
        batch = _parse_batch(body)
        prepared, _ = _ingest(
            batch.events,
            batch.site or _site_field(body),
            signals=batch.signals,
            behaviour=batch.behaviour,
        )
    else:
        prepared, _ = _ingest([_pop_site(body)], _site_field(body))
    return _batch_response(prepared)


# Seed 001: explicit sessions ------------------------------------------------------


def _session_reply(session_id: str, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    visitor = rows[0]["visitor_id"] if rows else 0
    return {
        "session_id": session_id,
        "visitor_id": f"{visitor & 0xFFFFFFFFFFFFFFFF:016x}",
        "timestamp": int(utcnow().timestamp() * 1000),
        **extra,
    }


def _seed001_event(body: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    event = _pop_site(body)
    event.pop("visitor_id", None)
    event.pop("fingerprint", None)
    if name is not None:
        event.setdefault("name", name)
    return event


@operation(
    bp,
    "/track/session/start",
    methods=["POST"],
    summary="Start a session (seed 001)",
    tag=TAG,
    auth="none",
    body_doc=schemas.TrackEvent,
    envelope="none",
    errors=(401, 403, 404, 422, 429),
)
@limiter.limit(limits.per_ip("session"), exempt_when=limits.exempt)
def session_start():
    """Records the landing pageview; answers the session id to send with later events."""
    body = read_json_object()
    session_id = body.get("session_id") if isinstance(body.get("session_id"), str) else None
    session_id = session_id or secrets.token_hex(16)
    event = _seed001_event(body, "pageview")
    event["session_id"] = session_id
    prepared, _ = _ingest([event], _site_field(body))
    _raise_first(prepared)
    return _session_reply(session_id, prepared.rows)


@operation(
    bp,
    "/track/event",
    methods=["POST"],
    summary="Record one event (seed 001)",
    tag=TAG,
    auth="none",
    body_doc=schemas.TrackEvent,
    envelope="none",
    errors=(401, 403, 404, 422, 429),
)
@limiter.limit(limits.per_ip("event"), exempt_when=limits.exempt)
def session_event():
    body = read_json_object()
    prepared, _ = _ingest([_seed001_event(body)], _site_field(body))
    _raise_first(prepared)
    return _session_reply(str(body.get("session_id") or ""), prepared.rows)


@operation(
    bp,
    "/track/events/batch",
    methods=["POST"],
    summary="Record up to 100 events (seed 001)",
    tag=TAG,
    auth="none",
    body_doc=schemas.Batch,
    envelope="none",
    errors=(401, 403, 404, 422, 429),
)
@limiter.limit(limits.per_ip("batch"), exempt_when=limits.exempt)
def session_events_batch():
    body = read_json_object()
    session_id = body.get("session_id") if isinstance(body.get("session_id"), str) else None
    events = body.get("events")
    if isinstance(events, list) and session_id:
        events = [
            {**e, "session_id": e.get("session_id", session_id)} if isinstance(e, dict) else e
            for e in events
        ]
        body = {**body, "events": events}
    batch = _parse_batch({k: v for k, v in body.items() if k != "session_id"})
    prepared, _ = _ingest(
        batch.events,
        batch.site or _site_field(body),
        signals=batch.signals,
        behaviour=batch.behaviour,
    )
    reply, _status = _batch_response(prepared)
    return {**_session_reply(session_id or "", prepared.rows), **reply}


@operation(
    bp,
    "/track/session/end",
    methods=["POST"],
    summary="End a session (seed 001)",
    tag=TAG,
    auth="none",
    body_doc=schemas.TrackEvent,
    envelope="none",
    errors=(401, 403, 404, 422, 429),
)
@limiter.limit(limits.per_ip("session"), exempt_when=limits.exempt)
def session_end():
    """Records the end with engagement data; answers the engagement score."""
    body = read_json_object()
    behaviour = body.pop("behaviour", None) if isinstance(body.get("behaviour"), dict) else None
    event = _seed001_event(body, "session_end")
    event["name"] = "session_end"
    prepared, _ = _ingest([event], _site_field(body), behaviour=behaviour)
    _raise_first(prepared)
    row = prepared.rows[0] if prepared.rows else {}
    score = engagement_score(
        int((behaviour or {}).get("pageviews") or 1),
        int((row.get("engaged_ms") or 0) / 1000),
        row.get("engaged_ms"),
        row.get("scroll_depth"),
        int((behaviour or {}).get("clicks") or 0),
    )
    return _session_reply(str(body.get("session_id") or ""), prepared.rows, engagement_score=score)


def _raise_first(prepared: pipeline.Prepared) -> None:
    if prepared.errors:
        error = prepared.errors[0]
        raise ValidationFailed(error.message, code=error.error, errors=error.errors)


# Pixel (seeds 000 and 004) --------------------------------------------------------


@operation(
    bp,
    "/api/v1/pixel",
    methods=["GET"],
    summary="1x1 tracking pixel (key in `k`)",
    tag=TAG,
    auth="none",
    envelope="none",
    errors=(401, 403, 404, 422, 429),
)
@limiter.limit(limits.per_ip("event"), exempt_when=limits.exempt)
def pixel():
    """`?k=<site key or API key>&u=<url>&r=<referrer>&e=<event name>`; answers a GIF."""
    args = request.args
    event = {
        "name": args.get("e") or "pageview",
        "url": args.get("u") or request.referrer,
        "referrer": args.get("r"),
    }
    # `k` is the site key, or an API key (seed 000): resolve_sender tells them apart.
    prepared, _ = _ingest([{k: v for k, v in event.items() if v}], args.get("k"))
    _raise_first(prepared)
    response = Response(GIF, mimetype="image/gif")
    response.headers["Cache-Control"] = "no-store, max-age=0"
    return response


@operation(
    bp,
    "/api/v1/pixel/config",
    methods=["GET"],
    summary="Pixel configuration",
    tag=TAG,
    auth="none",
    envelope="none",
    errors=(404,),
)
def pixel_config():
    """Seed 004: what the pixel collects for a site (`?site=<site key>`)."""
    from pulse.ingest.sites import site_facts

    ref = request.args.get("site") or request.args.get("k")
    facts = site_facts(ref) if ref else None
    return {
        "enabled": facts is not None or ref is None,
        "features": {"pageviews": True, "events": True, "sessions": True},
        "sample_rate": 1.0,
        "endpoint": current_app.config["BASE_URL"] + "/api/v1/pixel/track",
    }


@operation(
    bp,
    "/api/v1/pixel/track",
    methods=["POST"],
    summary="Track from a pixel client",
    tag=TAG,
    auth="none",
    body_doc=schemas.TrackEvent,
    envelope="none",
    errors=(401, 403, 404, 422, 429),
)
@limiter.limit("300/minute", exempt_when=limits.exempt)
def pixel_track():
    """Seed 004: `{"event", "url", "referrer", "properties"}` → `{"tracked": true}`."""
    body = read_json_object()
    event = _pop_site(body)
    if not request.headers.get("Authorization") and not request.headers.get("X-API-Key"):
        event.pop("user_agent", None)  # a browser's own User-Agent header is the truth
    prepared, _ = _ingest([event], _site_field(body))
    _raise_first(prepared)
    return {"tracked": bool(prepared.rows)}


def init_app(app) -> None:
    app.register_blueprint(bp)
