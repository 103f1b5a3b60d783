"""Cross-cutting HTTP behaviour: request ids, JSON encoding, security headers, CORS."""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import orjson
from flask import Flask, g, request
from flask.json.provider import JSONProvider
from werkzeug.routing import BaseConverter, ValidationError

# JSON API, tracking and seed 001's analytics endpoints: any origin, without credentials.
CORS_PREFIXES = ("/api/", "/track/", "/analytics/")
REQUEST_SCOPED = ("actor", "auth_method", "_login_user", "request_id")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
API_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Authorization, Content-Type, Idempotency-Key, X-API-Key, X-Request-ID, X-Workspace-ID, "
        "X-Fingerprint-ID, X-Visitor-ID"
    ),
    "Access-Control-Expose-Headers": (
        "X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "
        "Retry-After, Idempotent-Replayed, Link"
    ),
    "Access-Control-Max-Age": "600",
}


def request_id(incoming: str) -> str:
    """The caller's X-Request-ID when it looks like one, else a new id."""
    if incoming and REQUEST_ID.match(incoming):
        return incoming
    return "req_" + os.urandom(16).hex()  # uuid4's randomness without building a UUID


class OrjsonProvider(JSONProvider):
    """orjson for every JSON body: faster, and datetimes come out as RFC 3339."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)


class IdConverter(BaseConverter):
    """A positive database id that fits a 32-bit column (bigger numbers are a 404)."""

    regex = r"\d{1,10}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 0 < number < 2**31:
            raise ValidationError()
        return number

    def to_url(self, value: Any) -> str:
        return str(int(value))


def init_app(app: Flask) -> None:
    app.json = OrjsonProvider(app)
    app.url_map.converters["id"] = IdConverter

    @app.before_request
    def start_request() -> None:
        # `g` belongs to the app context, which a test (or a CLI command) may keep
        # open across requests: drop what belongs to the previous request's caller.
        for name in REQUEST_SCOPED:
            g.pop(name, None)
        g.request_id = request_id(request.headers.get("X-Request-ID", ""))

    @app.after_request
    def finish_response(response):
        response.headers["X-Request-ID"] = g.get("request_id") or f"req_{uuid.uuid4().hex}"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        if request.path.startswith(CORS_PREFIXES):
            for name, value in API_CORS_HEADERS.items():
                response.headers.setdefault(name, value)
        else:
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response
