"""Errors: one exception tree, answered as JSON on API paths and HTML elsewhere.

Every error body has the seed shape `{"error": code, "message": ..., "errors": {...}}`.
Services raise these; views never build error responses by hand.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """The settings do not allow the app to start."""


class PulseError(Exception):
    """An error with an HTTP status and a machine-readable code."""

    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        errors: dict[str, list[str]] | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.code = code or self.code
        self.errors = errors
        self.status = status or self.status
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(PulseError):
    status, code = 400, "bad_request"


class ValidationFailed(PulseError):
    status, code, message = 422, "validation_failed", "The given data was invalid."


class Unauthorized(PulseError):
    status, code, message = 401, "unauthorized", "Invalid or missing credentials."


class Forbidden(PulseError):
    status, code, message = 403, "access_denied", "Insufficient permissions."


class NotFound(PulseError):
    status, code, message = 404, "not_found", "Resource not found."


class Conflict(PulseError):
    status, code = 409, "conflict"


class Gone(PulseError):
    status, code = 410, "gone"


class ServiceUnavailable(PulseError):
    status, code = 503, "service_unavailable"


class PayloadTooLarge(PulseError):
    status, code = 413, "payload_too_large"

    def __init__(self, limit: int | None) -> None:
        super().__init__(f"The request body is larger than the {limit} bytes allowed.")


def server_error(request_id: str | None) -> PulseError:
    """The 500 answered for an unexpected exception: its id, never its details."""
    return PulseError(
        "An unexpected error occurred.",
        code="server_error",
        status=500,
        extra={"request_id": request_id},
    )


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    410: "gone",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limit_exceeded",
    431: "request_header_fields_too_large",
}


def wants_json() -> bool:
    """API paths always answer JSON; elsewhere only when the client prefers it."""
    path = request.path
    if path.startswith(("/api/", "/track/", "/analytics/")) or path in ("/api", "/health"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(error: PulseError) -> Response | tuple[str, int]:
    if wants_json():
        response = jsonify(error.body())
        response.status_code = error.status
    else:
        html = render_template("errors/error.html", error=error)
        response = current_app.response_class(html, status=error.status, mimetype="text/html")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def _from_http_exception(exc: HTTPException) -> PulseError:
    status = exc.code or 500
    code = HTTP_CODES.get(status, "error")
    message = exc.description or exc.name
    if status == 404:
        message = "Resource not found."
    elif status == 405:
        message = f"Method {request.method} is not allowed here."
    elif status == 413:
        message = PayloadTooLarge(current_app.config.get("MAX_CONTENT_LENGTH")).message
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if status == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    if status == 429:
        extra.update(_rate_limit_details())
        message = f"Too many requests. Please retry after {extra['retry_after']} seconds."
    return PulseError(message, code=code, status=status, extra=extra, headers=headers)


def _rate_limit_details() -> dict[str, Any]:
    """The breached limit, in the fields of the seed's 429 body."""
    import time
    from datetime import UTC, datetime

    from pulse.extensions import limiter

    current = limiter.current_limit
    if current is None:
        return {"retry_after": 60, "limit": None, "remaining": 0, "reset_at": None}
    reset_at = int(current.reset_at)
    return {
        # The same arithmetic as Flask-Limiter's Retry-After header, so the two agree.
        "retry_after": int(current.reset_at - time.time()),
        "limit": current.limit.amount,
        "remaining": 0,
        "reset_at": datetime.fromtimestamp(reset_at, UTC).isoformat().replace("+00:00", "Z"),
    }


def register_error_handlers(app: Flask) -> None:
    """Answer every error in the seed shape; roll back the session on a 500."""

    @app.errorhandler(PulseError)
    def handle_pulse_error(error: PulseError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException):
        if exc.code and exc.code >= 500:
            return handle_server_error(exc)
        return error_response(_from_http_exception(exc))

    @app.errorhandler(Exception)
    def handle_server_error(exc: Exception):
        from pulse.extensions import db

        db.session.rollback()
        if not isinstance(exc, HTTPException):
            log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(server_error(getattr(g, "request_id", None)))
