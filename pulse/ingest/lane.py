"""The tracking fast lane: hot tracking requests answered in front of Flask.

A tracking request needs none of what Flask does for the dashboard and the API
(cookie sessions, login, CSRF, route limits, template context), and it is the one
request that arrives thousands of times a second. `TrackingLane` wraps the app's
WSGI callable and answers the paths of `handlers.ROUTES` itself, in an app context,
with the handlers, error bodies and headers the Flask views of the same paths use
(those document the paths in OpenAPI and answer them when INGEST_FAST_LANE is off).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

import orjson
from flask import Flask
from werkzeug.wsgi import get_input_stream

from pulse.errors import BadRequest, PayloadTooLarge, PulseError, server_error
from pulse.extensions import db
from pulse.http import API_CORS_HEADERS, request_id
from pulse.ingest.accept import count_rejected
from pulse.ingest.facts import call_from_environ
from pulse.ingest.handlers import ROUTES, Handler, Reply

log = logging.getLogger(__name__)

STATUS_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}
COMMON_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    *API_CORS_HEADERS.items(),
]


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The request body, at most `limit` bytes (413 beyond, as Flask would answer)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise BadRequest("Content-Length is not a number.", code="bad_request") from exc
    if length > limit:
        raise PayloadTooLarge(limit)
    if length and "HTTP_TRANSFER_ENCODING" not in environ:
        return environ["wsgi.input"].read(length)  # the server bounds it by Content-Length
    body = get_input_stream(environ, safe_fallback=True).read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(limit)
    return body


def answer(
    app: Flask, route: tuple[Handler, str], environ: dict[str, Any]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run a tracking handler on a WSGI request: status, headers and body of the answer."""
    handler, kind = route
    rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
    call = None
    with app.app_context():
        try:
            body = read_body(environ, app.config.get("MAX_CONTENT_LENGTH") or 1024 * 1024)
            call = call_from_environ(environ, body)
            reply = handler(call)
            if db.session.registry.has():
                db.session.commit()
        except PulseError as error:
            _rollback()
            if call is None or not call.counted:
                error = count_rejected(kind, environ.get("REMOTE_ADDR") or "unknown") or error
            reply = Reply(error.body(), error.status, headers=error.headers)
        except Exception:
            _rollback()
            log.exception(
                "unhandled error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")
            )
            reply = Reply(server_error(rid).body(), 500)
    content = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
    headers = [
        ("Content-Type", reply.media_type),
        ("Content-Length", str(len(content))),
        ("X-Request-ID", rid),
        *COMMON_HEADERS,
        *reply.headers.items(),
    ]
    return reply.status, headers, content


def _rollback() -> None:
    if db.session.registry.has():
        db.session.rollback()


class TrackingLane:
    """WSGI middleware: tracking paths here, everything else to Flask."""

    def __init__(self, app: Flask, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        route = ROUTES.get((environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")))
        if route is None or not self.app.config.get("INGEST_FAST_LANE", True):
            return self.wsgi_app(environ, start_response)
        status, headers, content = answer(self.app, route, environ)
        start_response(STATUS_LINES.get(status, str(status)), headers)
        return [content]
