"""Top values of one dimension: pages, sources, countries, ... or a custom property.

Hit dimensions (page, event, property, country, browser, OS, device, agent) count
hits: visitors, pageviews, events. Session dimensions (entry/exit page, source,
channel, referrer, utm_source/medium/campaign) count the visits that started in
the range: visitors, sessions, pageviews, bounce rate, visit duration. Every row
carries humans / agents / bots (visitors per label, whatever the classification)
and the agents' share. Rows are ordered by visitors, then pageviews or sessions,
then value (code-point order, no value last).
"""

from __future__ import annotations

from typing import Any

from pulse.analytics import raw
from pulse.analytics.dimensions import Dimension, dimension
from pulse.analytics.formatting import rate, split, with_share
from pulse.analytics.query import Query
from pulse.errors import ValidationFailed

UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


def resolve(name: str, field: str = "property") -> Dimension:
    """A dimension by name; anything else is taken as a custom property (seed 002)."""
    try:
        return dimension(name)
    except ValueError:
        pass
    try:
        return dimension(f"prop.{name}")
    except ValueError as exc:
        raise ValidationFailed("Invalid query parameters.", errors={field: [str(exc)]}) from exc


def _row(dim: Dimension, value: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    row = {"value": value}
    if dim.prop_key is None:
        row[dim.name] = value
    row.update(metrics)
    return row


def breakdown(q: Query, name: str | Dimension, limit: int | None = None) -> dict[str, Any]:
    """The top `limit` (default: the query's) values of a dimension, busiest first."""
    dim = name if isinstance(name, Dimension) else resolve(name)
    limit = limit or q.limit
    rows = []
    if dim.session_scoped:
        for r in raw.visit_counts(q, dim.on_visits(), limit=limit, dimension=dim.name):
            sessions = r["sessions"]
            metrics = {
                "visitors": r["visitors"],
                "sessions": sessions,
                "pageviews": r["pageviews"],
                "bounce_rate": rate(r["bounces"], sessions),
                "visit_duration": round(r["duration"] / sessions) if sessions else 0,
                **with_share(split(r)),
            }
            rows.append(_row(dim, r["g"], metrics))
    else:
        for r in raw.event_counts(q, dim.on_events(), limit=limit, dimension=dim.name):
            metrics = {
                "visitors": r["visitors"],
                "pageviews": r["pageviews"],
                "events": r["events"],
                **with_share(split(r)),
            }
            rows.append(_row(dim, r["g"], metrics))
    return {"dimension": dim.name, "rows": rows}


def top_pages(q: Query) -> dict[str, Any]:
    return breakdown(q, "page")


def entry_pages(q: Query) -> dict[str, Any]:
    return breakdown(q, "entry_page")


def exit_pages(q: Query) -> dict[str, Any]:
    return breakdown(q, "exit_page")


def sources(q: Query) -> dict[str, Any]:
    return breakdown(q, "source")


def referrers(q: Query) -> dict[str, Any]:
    return breakdown(q, "referrer")


def channels(q: Query) -> dict[str, Any]:
    return breakdown(q, "channel")


def utm(q: Query, field: str = "utm_source") -> dict[str, Any]:
    """One campaign tag: `source` or `utm_source`, medium, campaign, term, content."""
    name = field if field.startswith("utm_") else f"utm_{field}"
    if name not in UTM_FIELDS:
        raise ValidationFailed(
            "Invalid query parameters.", errors={"field": [f"Use one of: {', '.join(UTM_FIELDS)}."]}
        )
    return breakdown(q, name)


def countries(q: Query) -> dict[str, Any]:
    return breakdown(q, "country")


def devices(q: Query) -> dict[str, Any]:
    return breakdown(q, "device")


def browsers(q: Query) -> dict[str, Any]:
    return breakdown(q, "browser")


def operating_systems(q: Query) -> dict[str, Any]:
    return breakdown(q, "os")


def agents(q: Query) -> dict[str, Any]:
    """Detected agents and bots by name (seed 000); use with classification agent,bot."""
    return breakdown(q, "agent")
