"""Request facts, read once per tracking request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from flask import request

from pulse.models import utcnow
from pulse.net import client_address

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


@dataclass(frozen=True)
class RequestFacts:
    """What the tracking request itself tells: who sent it, from where, when."""

    ip: str
    user_agent: str
    origin: str | None
    headers: dict[str, str] = field(default_factory=dict)
    received_at: datetime = field(default_factory=utcnow)


def read_facts() -> RequestFacts:
    """The facts of the current request (client IP as ProxyFix left it)."""
    headers = {}
    for name in DETECTION_HEADERS:
        value = request.headers.get(name)
        if value is not None:
            headers[name] = value[:512]
    return RequestFacts(
        ip=client_address(),
        user_agent=(request.headers.get("User-Agent") or "")[:1024],
        origin=request.headers.get("Origin"),
        headers=headers,
    )
