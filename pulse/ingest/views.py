"""Tracking endpoints of the three seed documents, as Flask routes.

These routes register the paths (OpenAPI, url_map) and answer them when the fast
lane is off; with it on (the default) `lane.TrackingLane` answers the same paths
before Flask, with the same handlers (handlers.py).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from pulse.api.routing import operation
from pulse.extensions import csrf
from pulse.ingest import handlers, schemas
from pulse.ingest.facts import call_from_flask
from pulse.ingest.lane import answer

bp = Blueprint("ingest", __name__)
csrf.exempt(bp)
TAG = "tracking"
TRACKING_ERRORS = (400, 401, 403, 404, 413, 422, 429)


def _respond() -> Response:
    route = handlers.ROUTES[(request.method, request.path)]
    status, headers, content = answer(current_app._get_current_object(), route, request.environ)
    return Response(content, status=status, headers=headers)


def _document(path: str, method: str, summary: str, body=None, status: int = 200) -> None:
    handler = handlers.ROUTES[(method, path)][0]

    def view() -> Response:
        return _respond()

    view.__name__, view.__doc__ = handler.__name__, handler.__doc__
    operation(
        bp,
        path,
        methods=[method],
        summary=summary,
        tag=TAG,
        auth="none",
        body_doc=body,
        status=status,
        envelope="none",
        errors=TRACKING_ERRORS,
    )(view)


# Seed 002
_document("/api/v1/track", "POST", "Track one event", schemas.TrackEvent, 202)
_document("/api/v1/track/batch", "POST", "Track up to 100 events", schemas.Batch, 202)
# Seed 000
_document(
    "/api/v1/events", "POST", "Ingest events: pageview, detection, session_end", schemas.Batch, 202
)
# Seed 001: explicit sessions
_document("/track/session/start", "POST", "Start a session (seed 001)", schemas.TrackEvent)
_document("/track/event", "POST", "Record one event (seed 001)", schemas.TrackEvent)
_document("/track/events/batch", "POST", "Record up to 100 events (seed 001)", schemas.Batch)
_document("/track/session/end", "POST", "End a session (seed 001)", schemas.TrackEvent)
# Pixel (seeds 000 and 004)
_document("/api/v1/pixel", "GET", "1x1 tracking pixel (key in `k`)")
_document("/api/v1/pixel/track", "POST", "Track from a pixel client", schemas.TrackEvent)


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
    return handlers.pixel_config(call_from_flask()).body


def init_app(app) -> None:
    app.register_blueprint(bp)
