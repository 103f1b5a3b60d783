"""classify(): gather evidence from every layer and turn it into one Verdict.

Pure: no Flask, no database, no network. Safe on any input: wrong types are treated
as absent (or, for the user agent, as missing) rather than raising.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pulse.detection.headers import header_evidence, is_prefetch
from pulse.detection.network import cloud_provider
from pulse.detection.scoring import evidence
from pulse.detection.signals import signal_evidence
from pulse.detection.useragent import inspect
from pulse.detection.verdict import Verdict, decide

_MAX_HEADERS = 200
_MAX_HEADER_VALUE = 4096
# Bigger inputs are classified uncached (the request facts keep values to 512).
_MEMO_UA = 1024
_MEMO_HEADERS = 24
_MEMO_VALUE = 512


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

    Without browser signals, the verdict depends on the user agent, the headers and the
    IP's cloud provider only: those are memoised (a visitor's requests repeat them, and
    most visitors share a few browsers), keyed on the provider, not the IP.
    """
    provider = cloud_provider(ip)
    if signals is None and _memoisable(user_agent, headers):
        return _classify_memo(user_agent, tuple(headers.items()), provider)  # type: ignore[arg-type, union-attr]
    return _classify(user_agent, headers, signals, provider)


def _memoisable(user_agent: object, headers: object) -> bool:
    """Text of bounded size only, so the memo stays small whatever is sent."""
    return (
        type(user_agent) is str
        and len(user_agent) <= _MEMO_UA
        and type(headers) is dict
        and len(headers) <= _MEMO_HEADERS
        and all(
            type(k) is str and type(v) is str and len(v) <= _MEMO_VALUE for k, v in headers.items()
        )
    )


@lru_cache(maxsize=4096)
def _classify_memo(
    user_agent: str, header_items: tuple[tuple[str, str], ...], provider: str | None
) -> Verdict:
    return _classify(user_agent, dict(header_items), None, provider)


def _classify(
    user_agent: str | None,
    headers: Mapping[str, str] | None,
    signals: Mapping[str, Any] | None,
    provider: str | None,
) -> Verdict:
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
    if provider:
        items.append(evidence("ip.datacenter", f"client IP is in {provider} cloud range"))
    if isinstance(signals, Mapping):
        items += signal_evidence(signals, ua)
    return decide(items, client=ua.client, declared=ua.declared, prefetch=prefetch)
