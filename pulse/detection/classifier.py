"""classify(): gather evidence from every layer and turn it into one Verdict.

Pure: no Flask, no database, no network. Safe on any input: wrong types are treated
as absent (or, for the user agent, as missing) rather than raising.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulse.detection.headers import header_evidence, is_prefetch
from pulse.detection.network import cloud_provider
from pulse.detection.scoring import evidence
from pulse.detection.signals import signal_evidence
from pulse.detection.useragent import inspect
from pulse.detection.verdict import Verdict, decide

_MAX_HEADERS = 200
_MAX_HEADER_VALUE = 4096


def _lower_headers(headers: Any) -> dict[str, str] | None:
    """Header names lower-cased; non-text names or values are dropped.

    Accepts a Mapping, werkzeug's Headers (request.headers) or a list of pairs; anything
    else gives None, which counts as "headers not observed".
    """
    items = getattr(headers, "items", None)
    if callable(items):
        pairs = items()
    elif isinstance(headers, (list, tuple)):
        pairs = headers
    else:
        return None
    lowered: dict[str, str] = {}
    for index, pair in enumerate(pairs):
        if index >= _MAX_HEADERS:
            break
        if not isinstance(pair, tuple) or len(pair) != 2:
            continue
        name, value = pair
        if isinstance(name, str) and isinstance(value, str):
            lowered.setdefault(name.lower(), value[:_MAX_HEADER_VALUE])
    return lowered


def classify(
    user_agent: str | None,
    headers: Mapping[str, str] | None = None,
    signals: Mapping[str, Any] | None = None,
    ip: str | None = None,
) -> Verdict:
    """Human, bot or agent for one request, with reasons.

    `headers` None means "not observed" (no header evidence at all), while an empty
    mapping means the request really had none. `ip` is only matched against cloud
    ranges and never kept.
    """
    ua = inspect(user_agent)
    items = list(ua.evidence)
    prefetch = False
    lowered = _lower_headers(headers) if headers is not None else None
    if lowered is not None:
        items += header_evidence(lowered, ua)
        prefetch = is_prefetch(lowered)
        if prefetch:
            items.append(
                evidence("hdr.prefetch", "speculative prefetch or prerender, not a pageview")
            )
    provider = cloud_provider(ip)
    if provider:
        items.append(evidence("ip.datacenter", f"client IP is in {provider} cloud range"))
    if isinstance(signals, Mapping):
        items += signal_evidence(signals, ua)
    return decide(items, client=ua.client, declared=ua.declared, prefetch=prefetch)
