"""The OpenAPI 3.1 document, built from the operation registry and its pydantic models."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from flask import current_app
from pydantic.json_schema import models_json_schema

from pulse.accounts.scopes import SCOPES
from pulse.api.routing import REGISTRY, Operation

PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "examples": ["not_found"]},
        "message": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
}
META_SCHEMA = {
    "type": "object",
    "properties": {
        k: {"type": ["integer", "null"]}
        for k in ("current_page", "from", "last_page", "per_page", "to", "total")
    },
}
LINKS_SCHEMA = {
    "type": "object",
    "properties": {k: {"type": ["string", "null"]} for k in ("first", "last", "prev", "next")},
}
LIST_PARAMS = [
    ("page", "integer", "Page number (from 1)"),
    ("per_page", "integer", "Items per page (max 100, default 25)"),
    ("sort", "string", "Comma-separated fields; prefix - for descending"),
    ("created_after", "string", "ISO 8601 lower bound on created_at"),
    ("created_before", "string", "ISO 8601 upper bound on created_at"),
    ("fields", "string", "Comma-separated fields to return"),
]
STATUS_TEXT = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    410: "Gone",
    422: "Validation failed",
    429: "Too many requests",
    503: "Unavailable",
}


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for converter, name in PARAM.findall(rule):
        schema = {"type": "integer"} if converter in ("id", "int") else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return PARAM.sub(lambda m: "{" + m.group(2) + "}", rule), params


def _ref(model: Any) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _response_schema(op: Operation) -> dict[str, Any] | None:
    if op.response is None:
        return None
    if op.envelope == "none":
        return _ref(op.response)
    if op.envelope == "list":
        return {
            "type": "object",
            "properties": {
                "data": {"type": "array", "items": _ref(op.response)},
                "meta": META_SCHEMA,
                "links": LINKS_SCHEMA,
            },
        }
    return {
        "type": "object",
        "properties": {"message": {"type": "string"}, "data": _ref(op.response)},
    }


def _operation(op: Operation, method: str, path_params: list[dict[str, Any]]) -> dict[str, Any]:
    success: dict[str, Any] = {"description": STATUS_TEXT.get(op.status, "OK")}
    schema = _response_schema(op)
    if schema is not None and op.status != 204:
        success["content"] = {"application/json": {"schema": schema}}
    responses: dict[str, Any] = {str(op.status): success}
    codes = set(op.errors) | {400, 429}
    if op.auth != "none":
        codes |= {401, 403}
    if op.body_doc is not None:
        codes |= {422}
    for code in sorted(codes):
        responses[str(code)] = {
            "description": STATUS_TEXT.get(code, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    item: dict[str, Any] = {
        "operationId": op.name if method == op.methods[0].lower() else f"{op.name}_{method}",
        "summary": op.summary,
        "tags": [op.tag],
        "responses": responses,
    }
    if op.description:
        item["description"] = op.description
    params = list(path_params)
    if op.envelope == "list" and method == "get":
        params += [
            {"name": n, "in": "query", "schema": {"type": t}, "description": d}
            for n, t, d in LIST_PARAMS
        ]
    params += [
        {"name": n, "in": "query", "schema": {"type": t}, "description": d}
        for n, t, d in op.extra.get("params", ())
    ]
    if method in ("post", "put", "patch", "delete") and op.auth != "none":
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "schema": {"type": "string"},
                "description": "Replays the first response for 24 hours",
            }
        )
    if params:
        item["parameters"] = params
    if op.body_doc is not None:
        item["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body_doc)}},
        }
    if op.auth == "none":
        item["security"] = []
    elif op.scope:
        item["x-required-scope"] = op.scope
        item["description"] = (
            item.get("description", "") + f"\n\nRequired scope: `{op.scope}`"
        ).strip()
    return item


@lru_cache(maxsize=4)
def _build(version: str, base_url: str) -> dict[str, Any]:
    models = {m for op in REGISTRY for m in (op.body_doc, op.response) if m is not None}
    _, definitions = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    schemas = dict(definitions.get("$defs", {}))
    schemas["Error"] = ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for op in REGISTRY:
        for rule in op.rules:
            path, path_params = openapi_path(rule)
            entry = paths.setdefault(path, {})
            for method in op.methods:
                item = _operation(op, method.lower(), path_params)
                if rule != op.rules[0]:
                    item["operationId"] += (
                        f"__{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
                    )
                    item["description"] = (
                        item.get("description", "") + f"\n\nAlias of `{op.rules[0]}`."
                    ).strip()
                entry[method.lower()] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pulse API",
            "version": version,
            "description": "Web analytics that tells humans from bots and AI agents.",
        },
        "servers": [{"url": base_url}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "sk_live_... API key",
                },
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
            "x-scopes": SCOPES,
        },
        "security": [{"bearer": []}, {"apiKeyHeader": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
    }


def document() -> dict[str, Any]:
    return _build(current_app.config["VERSION"], current_app.config["BASE_URL"])
