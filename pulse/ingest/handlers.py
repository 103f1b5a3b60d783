"""What each tracking endpoint does, given a TrackingCall; shared by the lane and views.

Every handler: decode the body, find the sender (site key + Origin, or an
events:write API key), prepare (validate + enrich) each item, count the request
against its limits and store the rows (accept.py), answer in the seed's shape.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
from flask import current_app

from pulse.api.routing import decode_json_object, validation_errors
from pulse.errors import BadRequest, ValidationFailed
from pulse.ingest import limits, pipeline, schemas
from pulse.ingest.accept import accept
from pulse.ingest.enrich import engagement_score
from pulse.ingest.facts import TrackingCall
from pulse.ingest.sites import Sender, resolve_sender
from pulse.models import utcnow

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SITE_FIELDS = ("site", "token", "site_key", "siteKey", "project")


@dataclass
class Reply:
    """A handler's answer: JSON (a dict) or raw bytes with their media type."""

    body: dict[str, Any] | bytes
    status: int = 200
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _check_args(call: TrackingCall) -> None:
    """NUL cannot be stored in PostgreSQL text: refuse it in the query string too."""
    if any("\x00" in value for value in call.args.values()):
        raise BadRequest("Parameters must not contain NUL characters.", code="invalid_parameter")


def _json_body(call: TrackingCall) -> dict[str, Any]:
    _check_args(call)
    return decode_json_object(call.body)


def _ingest(
    call: TrackingCall,
    kind: str,
    items: list[Any],
    site_ref: str | None,
    *,
    signals: dict[str, Any] | None = None,
    behaviour: dict[str, Any] | None = None,
) -> tuple[pipeline.Prepared, Sender]:
    """The shared path; raises 4xx for the whole request, returns per-item results."""
    facts = call.facts
    sender = resolve_sender(site_ref, facts.origin, call.secret)
    prepared = pipeline.prepare(items, sender, facts, signals, behaviour)
    admission = limits.Admission(
        kind=kind,
        ip=facts.ip,
        ip_exempt=sender.server or limits.whitelisted(facts.ip),
        site_id=sender.site_id,
        tier=sender.tier,
        events=len(items),
    )
    call.counted = True
    accept(prepared.rows, admission)
    return prepared, sender


def _batch_reply(prepared: pipeline.Prepared, status: int = 202) -> dict[str, Any]:
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
    return body


def _raise_first(prepared: pipeline.Prepared) -> None:
    if prepared.errors:
        error = prepared.errors[0]
        raise ValidationFailed(error.message, code=error.error, errors=error.errors)


def _site_field(call: TrackingCall, body: dict[str, Any]) -> str | None:
    for name in (*SITE_FIELDS, "k"):
        value = body.get(name)
        if isinstance(value, str):
            return value
    return call.arg("site") or call.arg("k")


def _without_site(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in SITE_FIELDS}


def _parse_batch(body: dict[str, Any]) -> schemas.Batch:
    try:
        return schemas.Batch.model_validate(body)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(errors=validation_errors(exc)) from exc


def _ingest_batch(call: TrackingCall, body: dict[str, Any]) -> pipeline.Prepared:
    batch = _parse_batch(body)
    prepared, _ = _ingest(
        call,
        "batch",
        batch.events,
        batch.site or _site_field(call, body),
        signals=batch.signals,
        behaviour=batch.behaviour,
    )
    return prepared


# Seed 002 -------------------------------------------------------------------------


def track(call: TrackingCall) -> Reply:
    """202 `{"queued": true}`; the event is stored or durably buffered."""
    body = _json_body(call)
    prepared, _ = _ingest(call, "event", [_without_site(body)], _site_field(call, body))
    _raise_first(prepared)
    return Reply({"queued": True, "skipped": prepared.skipped}, 202)


def track_batch(call: TrackingCall) -> Reply:
    """202 `{"queued": n, "errors": [...]}`: invalid items are reported, valid ones kept."""
    return Reply(_batch_reply(_ingest_batch(call, _json_body(call))), 202)


# Seed 000 -------------------------------------------------------------------------


def ingest_events(call: TrackingCall) -> Reply:
    """One event (`type`) or `{"events": [...]}`, with the site key or an API key."""
    body = _json_body(call)
    if isinstance(body.get("events"), list):
        prepared = _ingest_batch(call, body)
    else:
        prepared, _ = _ingest(call, "batch", [_without_site(body)], _site_field(call, body))
    return Reply(_batch_reply(prepared), 202)


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
    event = _without_site(body)
    event.pop("visitor_id", None)
    event.pop("fingerprint", None)
    if name is not None:
        event.setdefault("name", name)
    return event


def _session_id(body: dict[str, Any]) -> str | None:
    value = body.get("session_id")
    return value if isinstance(value, str) else None


def session_start(call: TrackingCall) -> Reply:
    """Records the landing pageview; answers the session id to send with later events."""
    body = _json_body(call)
    session_id = _session_id(body) or secrets.token_hex(16)
    event = _seed001_event(body, "pageview")
    event["session_id"] = session_id
    prepared, _ = _ingest(call, "session", [event], _site_field(call, body))
    _raise_first(prepared)
    return Reply(_session_reply(session_id, prepared.rows))


def session_event(call: TrackingCall) -> Reply:
    body = _json_body(call)
    prepared, _ = _ingest(call, "event", [_seed001_event(body)], _site_field(call, body))
    _raise_first(prepared)
    return Reply(_session_reply(str(body.get("session_id") or ""), prepared.rows))


def session_events_batch(call: TrackingCall) -> Reply:
    body = _json_body(call)
    session_id = _session_id(body)
    events = body.get("events")
    if isinstance(events, list) and session_id:
        events = [
            {**e, "session_id": e.get("session_id", session_id)} if isinstance(e, dict) else e
            for e in events
        ]
        body = {**body, "events": events}
    prepared = _ingest_batch(call, {k: v for k, v in body.items() if k != "session_id"})
    return Reply({**_session_reply(session_id or "", prepared.rows), **_batch_reply(prepared)})


def session_end(call: TrackingCall) -> Reply:
    """Records the end with engagement data; answers the engagement score."""
    body = _json_body(call)
    behaviour = body.pop("behaviour", None) if isinstance(body.get("behaviour"), dict) else None
    event = _seed001_event(body, "session_end")
    event["name"] = "session_end"
    prepared, _ = _ingest(call, "session", [event], _site_field(call, body), behaviour=behaviour)
    _raise_first(prepared)
    row = prepared.rows[0] if prepared.rows else {}
    score = engagement_score(
        int((behaviour or {}).get("pageviews") or 1),
        int((row.get("engaged_ms") or 0) / 1000),
        row.get("engaged_ms"),
        row.get("scroll_depth"),
        int((behaviour or {}).get("clicks") or 0),
    )
    return Reply(
        _session_reply(str(body.get("session_id") or ""), prepared.rows, engagement_score=score)
    )


# Pixel (seeds 000 and 004) --------------------------------------------------------


def pixel(call: TrackingCall) -> Reply:
    """`?k=<site key or API key>&u=<url>&r=<referrer>&e=<event name>`; answers a GIF."""
    _check_args(call)
    event = {
        "name": call.arg("e") or "pageview",
        "url": call.arg("u") or call.facts.referer,
        "referrer": call.arg("r"),
    }
    # `k` is the site key, or an API key (seed 000): resolve_sender tells them apart.
    prepared, _ = _ingest(call, "event", [{k: v for k, v in event.items() if v}], call.arg("k"))
    _raise_first(prepared)
    return Reply(GIF, 200, "image/gif", {"Cache-Control": "no-store, max-age=0"})


def pixel_track(call: TrackingCall) -> Reply:
    """Seed 004: `{"event", "url", "referrer", "properties"}` → `{"tracked": true}`."""
    body = _json_body(call)
    event = _without_site(body)
    if not call.has_auth_header:
        event.pop("user_agent", None)  # a browser's own User-Agent header is the truth
    prepared, _ = _ingest(call, "pixel", [event], _site_field(call, body))
    _raise_first(prepared)
    return Reply({"tracked": bool(prepared.rows)})


def pixel_config(call: TrackingCall) -> Reply:
    """Seed 004: what the pixel collects for a site (`?site=<site key>`)."""
    from pulse.ingest.sites import site_facts

    ref = call.arg("site") or call.arg("k")
    facts = site_facts(ref) if ref else None
    return Reply(
        {
            "enabled": facts is not None or ref is None,
            "features": {"pageviews": True, "events": True, "sessions": True},
            "sample_rate": 1.0,
            "endpoint": current_app.config["BASE_URL"] + "/api/v1/pixel/track",
        }
    )


Handler = Callable[[TrackingCall], Reply]
# (method, path) -> (handler, per-IP limit kind counted when the request fails early)
ROUTES: dict[tuple[str, str], tuple[Handler, str]] = {
    ("POST", "/api/v1/track"): (track, "event"),
    ("POST", "/api/v1/track/batch"): (track_batch, "batch"),
    ("POST", "/api/v1/events"): (ingest_events, "batch"),
    ("POST", "/track/session/start"): (session_start, "session"),
    ("POST", "/track/event"): (session_event, "event"),
    ("POST", "/track/events/batch"): (session_events_batch, "batch"),
    ("POST", "/track/session/end"): (session_end, "session"),
    ("GET", "/api/v1/pixel"): (pixel, "event"),
    ("POST", "/api/v1/pixel/track"): (pixel_track, "pixel"),
}
