"""Validate and enrich tracking items into Event rows (plain dicts).

Each item is checked on its own, so one bad item in a batch costs only itself:
the caller gets the valid rows and a list of per-item errors.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pydantic

from pulse.api.routing import validation_errors
from pulse.detection import classify
from pulse.detection.verdict import Verdict
from pulse.ingest import enrich, geo, referrers, salts
from pulse.ingest.facts import RequestFacts
from pulse.ingest.schemas import TrackEvent
from pulse.ingest.sites import Sender

FUTURE_TOLERANCE = timedelta(minutes=5)
BACKFILL_LIMIT = timedelta(days=30)
NOT_COUNTED = frozenset({"session_end"})


@dataclass
class ItemError:
    index: int
    error: str
    message: str
    errors: dict[str, list[str]] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "error": self.error, "message": self.message}
        if self.errors:
            out["errors"] = self.errors
        return out


@dataclass
class Prepared:
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    skipped: int = 0  # prefetches: accepted, deliberately not counted


class ItemRejected(Exception):
    def __init__(self, error: str, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.error, self.message, self.errors = error, message, errors or {}


def _timestamp(
    event: TrackEvent, sender: Sender, now: datetime, max_age: timedelta = BACKFILL_LIMIT
) -> datetime:
    """Servers may backfill 30 days; browsers' clocks are not trusted beyond a sanity check."""
    if event.ts is None:
        return now
    ts = event.ts if event.ts.tzinfo else event.ts.replace(tzinfo=now.tzinfo)
    if ts > now + FUTURE_TOLERANCE:
        raise ItemRejected(
            "timestamp_in_future",
            "The timestamp is in the future.",
            {"ts": ["More than 5 minutes ahead of the server clock."]},
        )
    if not sender.server:
        return now
    if ts < now - max_age:
        raise ItemRejected(
            "timestamp_too_old",
            f"Events can be backfilled up to {max_age.days} days.",
            {"ts": [f"Older than {max_age.days} days."]},
        )
    return ts


def client_columns(user_agent: str, verdict: Verdict) -> dict[str, Any]:
    """The columns an event keeps of its client: browser, OS, device and the verdict.

    The raw user agent is kept only for non-human traffic, so its verdict can be audited.
    """
    agent = enrich.parse_user_agent(user_agent)
    human = verdict.label == "human"
    return {
        "browser": agent.browser,
        "browser_version": agent.browser_version,
        "os": agent.os,
        "device": agent.device if human else "bot",
        "label": verdict.label,
        "agent_name": None if human else verdict.name,
        "agent_category": verdict.category,
        "confidence": round(float(verdict.confidence), 4),
        "tier": verdict.tier,
        "reasons": list(verdict.reasons)[:10],
        "detection": {
            "log_odds": verdict.log_odds,
            "declared": verdict.declared,
            "client": verdict.client,
            "operator": verdict.operator,
            "bot_probability": verdict.bot_probability,
        },
        "user_agent": None if human else user_agent,
    }


@dataclass
class Client:
    """What an item's client yields: its verdict's columns, country and visitor ids.

    Within one request these depend only on the IP and user agent (forwarded by a
    server, or the request's own, with its headers and signals), so the items of a
    batch from one client share them: classifying, parsing the user agent, the country
    lookup and the visitor hash were half the cost of preparing a batched event.
    """

    prefetch: bool
    columns: dict[str, Any]
    country: str | None
    visitor_ids: dict[date, int] = field(default_factory=dict)

    def visitor_id(self, day: date, today: date, site_id: int, ip: str, user_agent: str) -> int:
        """The visitor id of this client on `day` (each day has its own salt)."""
        known = self.visitor_ids.get(day)
        if known is None:
            salt = salts.salt_for_event(day, today)
            known = self.visitor_ids[day] = enrich.visitor_id(salt, site_id, ip, user_agent)
        return known


def prepare_item(
    raw: Any,
    sender: Sender,
    facts: RequestFacts,
    signals: dict[str, Any] | None,
    behaviour: dict[str, Any] | None,
    *,
    max_age: timedelta = BACKFILL_LIMIT,
    clients: dict[tuple[str, str, bool], Client] | None = None,
) -> dict[str, Any] | None:
    """One row for the events table, or None for a prefetch; raises ItemRejected.

    `clients` carries what earlier items of the same request found out about their
    client (see `Client`); without it, everything is worked out afresh.
    """
    if not isinstance(raw, dict):
        raise ItemRejected("validation_failed", "Each event must be a JSON object.")
    try:
        event = TrackEvent.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise ItemRejected(
            "validation_failed", "The event is invalid.", validation_errors(exc)
        ) from exc
    if not sender.server and (event.ip or event.user_agent):
        raise ItemRejected(
            "server_only_field",
            "ip and user_agent may only be sent with an events:write API key.",
            {"ip": ["Server-side only."]},
        )
    ts = _timestamp(event, sender, facts.received_at, max_age)
    url = event.url or (facts.referer if not sender.server else None)
    if event.name == "pageview" and not url:
        raise ItemRejected(
            "validation_failed", "A pageview needs its url.", {"url": ["Required for pageviews."]}
        )
    forwarded = sender.server and (event.ip or event.user_agent)
    ip = event.ip or facts.ip
    user_agent = event.user_agent or facts.user_agent
    key = (ip, user_agent, bool(forwarded))
    client = clients.get(key) if clients is not None else None
    if client is None:
        verdict = classify(user_agent, None if forwarded else facts.headers, signals, ip)
        client = Client(verdict.prefetch, client_columns(user_agent, verdict), geo.country_for(ip))
        if clients is not None:
            clients[key] = client
    if client.prefetch and event.name == "pageview":
        return None
    hostname, pathname, utm = enrich.split_url(url)
    ref = referrers.classify_referrer(event.referrer, hostname, utm)
    props = dict(event.props)
    if event.element is not None:
        props.update({f"element_{k}": v for k, v in event.element.model_dump().items() if v})
    return {
        "site_id": sender.site_id,
        "event_uid": event.id or uuid.uuid4().hex,
        "ts": ts,
        "name": event.name,
        "session_id": event.session_id or "",
        "visitor_id": client.visitor_id(
            ts.date(), facts.received_at.date(), sender.site_id, ip, user_agent
        ),
        "user_id": event.user_id,
        "hostname": hostname,
        "pathname": pathname,
        "referrer": (event.referrer or None) and event.referrer[:2048],
        "referrer_host": ref.referrer_host,
        "source": ref.source,
        "channel": ref.channel,
        "utm_source": utm.get("utm_source"),
        "utm_medium": utm.get("utm_medium"),
        "utm_campaign": utm.get("utm_campaign"),
        "utm_term": utm.get("utm_term"),
        "utm_content": utm.get("utm_content"),
        "country": client.country,
        **client.columns,
        "reasons": list(client.columns["reasons"]),  # each row its own, never shared
        "detection": dict(client.columns["detection"]),
        "props": props,
        "engaged_ms": event.engaged_ms,
        "scroll_depth": event.scroll_depth,
        "behaviour": behaviour if event.name == "session_end" and behaviour else None,
    }


def prepare(
    items: list[Any],
    sender: Sender,
    facts: RequestFacts,
    signals: dict[str, Any] | None = None,
    behaviour: dict[str, Any] | None = None,
) -> Prepared:
    """Rows for the valid items, errors for the others."""
    result = Prepared()
    clients: dict[tuple[str, str, bool], Client] = {}
    for index, raw in enumerate(items):
        try:
            row = prepare_item(raw, sender, facts, signals, behaviour, clients=clients)
        except ItemRejected as exc:
            result.errors.append(ItemError(index, exc.error, exc.message, exc.errors))
            continue
        if row is None:
            result.skipped += 1
        else:
            result.rows.append(row)
    return result
