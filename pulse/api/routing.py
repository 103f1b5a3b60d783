"""`operation`: declare a JSON endpoint once, for Flask, for validation and for OpenAPI.

Each operation names its path (and the seed paths that alias it), the models of its
body, query and response, and the scope an API key needs. The wrapper does the rest
the same way everywhere: authenticate, apply the CSRF origin rule to session
callers, check the key's scope, parse and validate input, honour Idempotency-Key,
commit once, and serialise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
import pydantic
from flask import Blueprint, Response, current_app, jsonify, request

from pulse.accounts.actor import Actor
from pulse.accounts.auth import current_actor
from pulse.api import idempotency
from pulse.api.listing import select_fields
from pulse.errors import (
    BadRequest,
    Forbidden,
    PulseError,
    Unauthorized,
    ValidationFailed,
    error_response,
)
from pulse.extensions import db

Auth = Literal["required", "optional", "none", "session"]


@dataclass
class Operation:
    """One documented endpoint."""

    rules: list[str]
    methods: list[str]
    name: str
    summary: str
    tag: str
    auth: Auth
    scope: str | None
    body: type[pydantic.BaseModel] | None
    query: type[pydantic.BaseModel] | None
    response: type[pydantic.BaseModel] | None
    body_doc: type[pydantic.BaseModel] | None
    envelope: Literal["single", "list", "none"]
    status: int
    errors: tuple[int, ...]
    description: str = ""
    query_key: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


REGISTRY: list[Operation] = []


def validation_errors(exc: pydantic.ValidationError) -> dict[str, list[str]]:
    """pydantic's errors as `{"field.path": ["message", ...]}`, without echoing input."""
    errors: dict[str, list[str]] = {}
    for item in exc.errors(include_input=False, include_url=False)[:50]:
        loc = ".".join(str(p) for p in item["loc"]) or "body"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "Unknown field."
        errors.setdefault(loc[:100], []).append(message)
    return errors


def _contains_nul(value: Any, depth: int = 0) -> bool:
    """NUL cannot be stored in PostgreSQL text; reject it at the edge for every input."""
    if isinstance(value, str):
        return "\x00" in value
    if depth > 64:
        return False
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v, depth + 1) for v in value)
    return False


def reject_nul_in_request(path_args: dict[str, Any]) -> None:
    if _contains_nul(path_args) or any("\x00" in v for v in request.args.values()):
        raise BadRequest("Parameters must not contain NUL characters.", code="invalid_parameter")


def read_json_object() -> dict[str, Any]:
    """The body as a JSON object whatever its Content-Type (trackers send text/plain)."""
    return decode_json_object(request.get_data(cache=True))


def decode_json_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object without NUL characters; 400/422 otherwise."""
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise BadRequest("The body is not valid JSON (UTF-8).", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The body must be a JSON object.", errors={"body": ["Expected an object."]}
        )
    # JSON has no raw control characters: a NUL can only come from a \u0000 escape.
    if b"\\u0000" in raw and _contains_nul(data):
        raise ValidationFailed(
            "Strings must not contain NUL characters.", errors={"body": ["NUL character."]}
        )
    return data


def parse_json_body(model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    data = read_json_object()
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationFailed(errors=validation_errors(exc)) from exc


def parse_query(model: type[pydantic.BaseModel]) -> pydantic.BaseModel:
    try:
        return model.model_validate(request.args.to_dict())
    except pydantic.ValidationError as exc:
        raise BadRequest(
            "Invalid query parameters.", code="invalid_parameter", errors=validation_errors(exc)
        ) from exc


def same_origin(origin: str) -> bool:
    """True when Origin is this deployment's (BASE_URL, or the host the request came to)."""
    allowed = {current_app.config["BASE_URL"].rstrip("/"), request.host_url.rstrip("/")}
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" in allowed


def check_session_csrf() -> None:
    """Seed 003: a state-changing session request has no Origin or the deployment's own."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    origin = request.headers.get("Origin")
    if origin and not same_origin(origin):
        raise Forbidden("Cross-site request rejected.", code="forbidden")


def authenticate(op: Operation) -> Actor | None:
    if op.auth == "none":
        return None
    actor = current_actor(allow_query_key=op.query_key)
    if actor is not None and actor.api_key is None:
        check_session_csrf()
    if actor is None and op.auth in ("required", "session"):
        raise Unauthorized(
            "Sign in or send an API key.", headers={"WWW-Authenticate": 'Bearer realm="pulse"'}
        )
    if op.auth == "session" and actor is not None and actor.api_key is not None:
        raise Forbidden("This endpoint needs a signed-in session, not an API key.")
    key = actor.api_key if actor is not None else None
    if op.scope and key is not None and op.scope not in key.scopes:
        raise Forbidden(
            f"Insufficient permissions. Required scope: {op.scope}",
            extra={"required_scope": op.scope},
        )
    return actor


def to_response(result: Any, op: Operation) -> Response:
    if isinstance(result, Response):
        return result
    status = op.status
    if isinstance(result, tuple):
        result, status = result
    if result is None:
        return Response(status=204)
    if isinstance(result, pydantic.BaseModel):
        result = result.model_dump(mode="json")
    if isinstance(result, dict) and op.response is not None and op.envelope != "none":
        result = select_fields(result, list(op.response.model_fields))
    response = jsonify(result)
    response.status_code = status
    return response


def operation(
    bp: Blueprint,
    rule: str,
    *,
    methods: Sequence[str] = ("GET",),
    summary: str,
    tag: str,
    aliases: Sequence[str] = (),
    auth: Auth = "required",
    scope: str | None = None,
    body: type[pydantic.BaseModel] | None = None,
    query: type[pydantic.BaseModel] | None = None,
    response: type[pydantic.BaseModel] | None = None,
    envelope: Literal["single", "list", "none"] = "single",
    status: int = 200,
    errors: tuple[int, ...] = (),
    query_key: bool = False,
    description: str = "",
    body_doc: type[pydantic.BaseModel] | None = None,
    params: Sequence[tuple[str, str, str]] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a JSON endpoint; the view gets `actor`, path args, and `body`/`query`.

    `params` documents query parameters the view reads itself: (name, type, description).
    """

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        op = Operation(
            rules=[rule, *aliases],
            methods=list(methods),
            name=func.__name__,
            summary=summary,
            tag=tag,
            auth=auth,
            scope=scope,
            body=body,
            query=query,
            response=response,
            body_doc=body_doc or body,
            envelope=envelope,
            status=status,
            errors=errors,
            query_key=query_key,
            description=description or (func.__doc__ or "").strip(),
            extra={"params": list(params)} if params else {},
        )

        @wraps(func)
        def view(**path_args: Any) -> Response:
            actor = authenticate(op)
            key = idempotency.requested_key() if actor is not None else None
            if key is not None:
                replay = idempotency.begin(actor.identity, key)
                if replay is not None:
                    return replay
            try:
                reject_nul_in_request(path_args)
                kwargs = dict(path_args)
                if op.auth != "none":
                    kwargs["actor"] = actor
                if body is not None:
                    kwargs["body"] = parse_json_body(body)
                if query is not None:
                    kwargs["query"] = parse_query(query)
                result = func(**kwargs)
                db.session.commit()
                out = to_response(result, op)
            except PulseError as exc:
                db.session.rollback()
                out = error_response(exc)
            except BaseException:
                if key is not None:
                    idempotency.release(actor.identity, key)
                raise
            if key is not None:
                idempotency.finish(actor.identity, key, out)
            return out

        for index, path in enumerate(op.rules):
            endpoint = func.__name__ if index == 0 else f"{func.__name__}_alias{index}"
            bp.add_url_rule(path, endpoint=endpoint, view_func=view, methods=list(methods))
        REGISTRY.append(op)
        return view

    return decorator
