"""Group stored events into visits: 30 minutes without a hit ends a visit.

A visit is keyed by the client's session id when it sends one (seed 001), else
found by visitor id and recency. Counters are updated in bulk, one query to find
the open visits of a batch and one flush to write them.

The rules below work on any object with the Visit columns as attributes: ORM
instances (`OrmVisits`, the reference path, used on SQLite) or plain records
loaded and written in bulk by `pulse.ingest.bulk` (PostgreSQL). Both paths share
this code, so they cannot drift apart.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select

from pulse.detection import rescore
from pulse.detection.scoring import PRIOR_LOG_ODDS
from pulse.detection.verdict import Verdict
from pulse.extensions import db
from pulse.ingest.enrich import engagement_score
from pulse.models import Visit

TIMEOUT = timedelta(minutes=30)
NOT_INTERACTION = frozenset({"pageview", "session_end"})
LABEL_RANK = {"human": 0, "bot": 1, "agent": 2}


class Visits(Protocol):
    """Where `assign` finds and creates visits (one object per visit id)."""

    def by_ids(self, ids: set[str]) -> dict[str, Any]:
        """The stored (or already created) visits with these ids, any site."""

    def open_at(self, site_id: int, visitor_ids: set[int], since: datetime) -> dict[int, Any]:
        """The latest visit of each visitor seen at or after `since - TIMEOUT`."""

    def new(self, fields: dict[str, Any]) -> Any:
        """A new visit with these column values."""


class OrmVisits:
    """Visits as ORM instances in db.session: the reference path (autoflush, one flush)."""

    def by_ids(self, ids: set[str]) -> dict[str, Visit]:
        return {v.id: v for v in db.session.scalars(select(Visit).where(Visit.id.in_(ids)))}

    def open_at(self, site_id: int, visitor_ids: set[int], since: datetime) -> dict[int, Visit]:
        found: dict[int, Visit] = {}
        rows = db.session.scalars(
            select(Visit)
            .where(
                Visit.site_id == site_id,
                Visit.visitor_id.in_(visitor_ids),
                Visit.last_seen_at >= since - TIMEOUT,
            )
            .order_by(Visit.last_seen_at)
        )
        for visit in rows:
            found[visit.visitor_id] = visit
        return found

    def new(self, fields: dict[str, Any]) -> Visit:
        visit = Visit(**fields)
        db.session.add(visit)
        return visit


def _new_visit(visits: Visits, row: dict[str, Any], visit_id: str | None = None) -> Any:
    fields = dict(
        id=visit_id or uuid.uuid4().hex,
        site_id=row["site_id"],
        visitor_id=row["visitor_id"],
        started_at=row["ts"],
        last_seen_at=row["ts"],
        entry_path=row["pathname"],
        exit_path=row["pathname"],
        hostname=row["hostname"],
        pageviews=0,
        events=0,
        duration_s=0,
        is_bounce=True,
        referrer_host=row["referrer_host"],
        source=row["source"],
        # A visit that starts on an internal link (after a 30-minute pause) is direct.
        channel="direct" if row["channel"] == "internal" else row["channel"],
        utm_source=row["utm_source"],
        utm_medium=row["utm_medium"],
        utm_campaign=row["utm_campaign"],
        country=row["country"],
        browser=row["browser"],
        os=row["os"],
        device=row["device"],
        label=row["label"],
        agent_name=row["agent_name"],
        agent_category=row["agent_category"],
        confidence=row["confidence"],
        tier=row.get("tier"),
        reasons=row.get("reasons") or [],
        detection=row.get("detection") or {},
        user_agent=row["user_agent"],
        behaviour={},
    )
    return visits.new(fields)


def _absorb(visit: Any, row: dict[str, Any]) -> None:
    """Count one event into its visit."""
    if row["ts"] < visit.started_at:
        visit.started_at = row["ts"]
        visit.entry_path = row["pathname"] if row["name"] == "pageview" else visit.entry_path
    if row["ts"] >= visit.last_seen_at:
        visit.last_seen_at = row["ts"]
        if row["name"] == "pageview":
            visit.exit_path = row["pathname"]
    if row["name"] == "pageview":
        if visit.pageviews == 0:
            visit.entry_path = row["pathname"]
        visit.pageviews += 1
    elif row["name"] not in NOT_INTERACTION:
        visit.events += 1
    visit.is_bounce = visit.pageviews <= 1 and visit.events == 0
    visit.duration_s = int((visit.last_seen_at - visit.started_at).total_seconds())
    if LABEL_RANK.get(row["label"], 0) > LABEL_RANK.get(visit.label, 0):
        visit.label, visit.agent_name = row["label"], row["agent_name"]
        visit.agent_category, visit.confidence = row["agent_category"], row["confidence"]
        visit.tier, visit.reasons = row.get("tier"), row.get("reasons") or []
        visit.detection = row.get("detection") or {}
        visit.user_agent = row["user_agent"]
    if row["name"] == "session_end":
        _end(visit, row)


def _end(visit: Any, row: dict[str, Any]) -> None:
    """Session end: engagement score, and the verdict re-scored on behaviour."""
    visit.ended_at = row["ts"]
    behaviour = dict(visit.behaviour or {})
    if row.get("behaviour"):
        behaviour.update(row["behaviour"])
    if row.get("engaged_ms"):
        behaviour["engaged_ms"] = behaviour.get("engaged_ms", 0) + row["engaged_ms"]
    if row.get("scroll_depth") is not None:
        behaviour["scroll_depth"] = max(behaviour.get("scroll_depth", 0), row["scroll_depth"])
    behaviour.setdefault("pageviews", visit.pageviews)
    behaviour.setdefault("duration_s", visit.duration_s)
    visit.behaviour = behaviour
    visit.engagement_score = engagement_score(
        visit.pageviews,
        visit.duration_s,
        behaviour.get("engaged_ms"),
        behaviour.get("scroll_depth"),
        visit.events,
    )
    detection = visit.detection or {}
    before = Verdict(
        label=visit.label,
        name=visit.agent_name or visit.browser or "Unknown",
        category=visit.agent_category,
        confidence=visit.confidence,
        tier=visit.tier or "human",
        reasons=tuple(visit.reasons or ()),
        operator=detection.get("operator"),
        bot_probability=detection.get("bot_probability", 0.0),
        log_odds=detection.get("log_odds", PRIOR_LOG_ODDS),
        declared=bool(detection.get("declared")),
        client=detection.get("client"),
    )
    after = rescore(before, behaviour)
    visit.label, visit.confidence, visit.tier = after.label, after.confidence, after.tier
    visit.agent_category = after.category
    visit.agent_name = after.name if after.label != "human" else None
    visit.reasons = list(after.reasons)[:12]
    visit.detection = {
        **detection,
        "log_odds": after.log_odds,
        "bot_probability": after.bot_probability,
    }
    if visit.is_bounce and visit.duration_s == 0 and behaviour.get("engaged_ms", 0) > 10_000:
        visit.duration_s = int(behaviour["engaged_ms"] / 1000)


# How a visit arrived. Only its first hit carries these; later hits get the visit's in
# `row["arrival"]`, so the live stream filters them as reports do (by the visit's source).
ARRIVAL = ("source", "channel", "referrer_host", "utm_source", "utm_medium", "utm_campaign")


def assign(rows: list[dict[str, Any]], visits: Visits | None = None) -> None:
    """Set each row's session_id, `visit_starts`, `visit_seen` and `arrival`, and
    update (or create) its visit."""
    visits = visits if visits is not None else OrmVisits()
    by_site: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_site[row["site_id"]].append(row)
    for site_id, site_rows in by_site.items():
        site_rows.sort(key=lambda r: r["ts"])
        explicit = {r["session_id"] for r in site_rows if r["session_id"]}
        known = visits.by_ids(explicit) if explicit else {}
        inferred = {r["visitor_id"] for r in site_rows if not r["session_id"]}
        current = visits.open_at(site_id, inferred, site_rows[0]["ts"]) if inferred else {}
        for row in site_rows:
            visit = _visit_for(visits, row, site_id, known, current)
            row["session_id"] = visit.id
            started, seen = visit.started_at, visit.last_seen_at
            _absorb(visit, row)
            # The visit's start before and after this row: the days whose roll-ups it
            # changes; and its last hit before: a visit idle longer than the timeout
            # (continued by its session id) may already be in today's roll-up.
            row["visit_starts"] = (started, visit.started_at)
            row["visit_seen"] = seen
            row["arrival"] = {name: getattr(visit, name) for name in ARRIVAL}


def _visit_for(
    visits: Visits,
    row: dict[str, Any],
    site_id: int,
    known: dict[str, Any],
    current: dict[int, Any],
) -> Any:
    sid = row["session_id"]
    if sid:
        visit = known.get(sid)
        if visit is not None and visit.site_id == site_id and visit.visitor_id == row["visitor_id"]:
            return visit
        visit = _new_visit(visits, row, sid if visit is None else None)
        known[visit.id] = visit
        return visit
    visit = current.get(row["visitor_id"])
    if visit is None or row["ts"] - visit.last_seen_at > TIMEOUT:
        visit = _new_visit(visits, row)
        current[row["visitor_id"]] = visit
    return visit
