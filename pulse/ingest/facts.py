"""Request facts, read once per tracking request, from Flask or straight from WSGI."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from pulse.accounts.auth import key_in_headers
from pulse.ingest.schemas import MAX_URL
from pulse.models import utcnow

# Headers the classifier looks at; nothing else of the request is kept.
DETECTION_HEADERS = (
    "accept",
    "accept-language",
    "accept-encoding",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
    "sec-purpose",
    "purpose",
    "x-purpose",
    "x-moz",
    "from",
    "via",
    "referer",
    "signature-agent",
)
_ENVIRON_KEYS = tuple(("HTTP_" + h.upper().replace("-", "_"), h) for h in DETECTION_HEADERS)


@dataclass(frozen=True)
class RequestFacts:
    """What the tracking request itself tells: who sent it, from where, when."""

    ip: str
    user_agent: str
    origin: str | None
    headers: dict[str, str] = field(default_factory=dict)
    received_at: datetime = field(default_factory=utcnow)
    # The page, for a pixel or a body without `url`: as long as a URL may be (the
    # detection headers above are cut at 512, which lost long query strings' UTM tags).
    referer: str | None = None


@dataclass
class TrackingCall:
    """One tracking request, whichever way it came in (the fast lane or a Flask view).

    `secret` is an API key from `Authorization: Bearer` or `X-API-Key`; `args` is the
    query string (first value of each name).
    """

    method: str
    path: str
    body: bytes
    args: Mapping[str, str]
    facts: RequestFacts
    secret: str | None
    has_auth_header: bool = False
    counted: bool = False  # set once the request was counted against its limits

    def arg(self, name: str) -> str | None:
        value = self.args.get(name)
        return value or None


def facts_from_environ(environ: dict[str, Any]) -> RequestFacts:
    """The facts of a WSGI request (REMOTE_ADDR as ProxyFix left it)."""
    headers = {}
    for key, name in _ENVIRON_KEYS:
        value = environ.get(key)
        if value is not None:
            headers[name] = value[:512]
    return RequestFacts(
        ip=environ.get("REMOTE_ADDR") or "unknown",
        user_agent=(environ.get("HTTP_USER_AGENT") or "")[:1024],
        origin=environ.get("HTTP_ORIGIN"),
        headers=headers,
        referer=(environ.get("HTTP_REFERER") or "")[:MAX_URL] or None,
    )


def call_from_environ(environ: dict[str, Any], body: bytes) -> TrackingCall:
    """A TrackingCall of a raw WSGI request whose body was read already."""
    query = environ.get("QUERY_STRING") or ""
    args: dict[str, str] = {}
    if query:
        for name, value in parse_qsl(query, keep_blank_values=True):
            args.setdefault(name, value)
    authorization = environ.get("HTTP_AUTHORIZATION") or ""
    api_key = environ.get("HTTP_X_API_KEY") or ""
    return TrackingCall(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=environ.get("PATH_INFO", ""),
        body=body,
        args=args,
        facts=facts_from_environ(environ),
        secret=key_in_headers(authorization, api_key),
        has_auth_header=bool(authorization or api_key),
    )


def call_from_flask() -> TrackingCall:
    """The TrackingCall of Flask's current request."""
    from flask import request

    return call_from_environ(request.environ, request.get_data(cache=True))
