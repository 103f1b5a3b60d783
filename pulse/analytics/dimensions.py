"""The dimensions a report can filter on or break down by, and where each one lives.

Some dimensions belong to the session (how it arrived: source, channel, referrer,
the campaign tags, its entry and exit page): they are read from `visits`, so a
visit from Google counts all its pageviews under Google, not only the first one.
The others belong to each hit (page, event name, properties) and are read from
`events`. Country, browser, OS and device are on both tables; each side reads its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.sql.expression import ColumnElement

from pulse.analytics.expressions import PropText
from pulse.models import Event, Visit

EVENTS = Event.__table__
VISITS = Visit.__table__
MAX_PROP_KEY = 64


@dataclass(frozen=True)
class Dimension:
    """A named column (or JSON property) of events and/or visits."""

    name: str
    event_column: str | None = None
    visit_column: str | None = None
    session_scoped: bool = False
    prop_key: str | None = None

    def on_events(self) -> ColumnElement[Any]:
        if self.prop_key is not None:
            return PropText(EVENTS.c.props, self.prop_key)
        if self.event_column is None:
            raise ValueError(f"{self.name} is not a column of events")
        return EVENTS.c[self.event_column]

    def on_visits(self) -> ColumnElement[Any]:
        if self.visit_column is None:
            raise ValueError(f"{self.name} is not a column of visits")
        return VISITS.c[self.visit_column]


def _event(name: str, column: str, visit_column: str | None = None) -> Dimension:
    return Dimension(name, event_column=column, visit_column=visit_column)


def _session(name: str, column: str) -> Dimension:
    return Dimension(name, visit_column=column, session_scoped=True)


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        _event("page", "pathname"),
        _event("hostname", "hostname"),
        _event("event", "name"),
        _event("utm_term", "utm_term"),
        _event("utm_content", "utm_content"),
        _event("country", "country", "country"),
        _event("browser", "browser", "browser"),
        _event("os", "os", "os"),
        _event("device", "device", "device"),
        _event("agent", "agent_name", "agent_name"),
        _event("agent_category", "agent_category", "agent_category"),
        _session("entry_page", "entry_path"),
        _session("exit_page", "exit_path"),
        _session("source", "source"),
        _session("channel", "channel"),
        _session("referrer", "referrer_host"),
        _session("utm_source", "utm_source"),
        _session("utm_medium", "utm_medium"),
        _session("utm_campaign", "utm_campaign"),
    )
}

# Query-string names (ours and the seeds') of each dimension.
ALIASES = {
    "path": "page",
    "pathname": "page",
    "url": "page",
    "host": "hostname",
    "name": "event",
    "event_name": "event",
    "goal": "event",
    "referrer_host": "referrer",
    "referer": "referrer",
    "entry": "entry_page",
    "landing_page": "entry_page",
    "exit": "exit_page",
    "geo": "country",
    "agent_name": "agent",
    "utm": "utm_source",
    "campaign": "utm_campaign",
    "medium": "utm_medium",
}
FILTER_ALIASES = {**{name: name for name in DIMENSIONS}, **ALIASES}
# These read oddly (or clash with other parameters) as filters: breakdown names only.
for _odd in ("geo", "utm", "url", "goal", "name"):
    FILTER_ALIASES.pop(_odd)


def dimension(name: str) -> Dimension:
    """A dimension by name or alias, or `prop.<key>` for a custom property."""
    for prefix in ("prop.", "props.", "property.", "properties."):
        if name.startswith(prefix):
            key = name[len(prefix) :]
            if not key or len(key) > MAX_PROP_KEY or '"' in key:
                raise ValueError(f"Property names are 1-{MAX_PROP_KEY} characters, without quotes.")
            return Dimension(f"prop.{key}", prop_key=key)
    canonical = ALIASES.get(name, name)
    if canonical not in DIMENSIONS:
        raise ValueError(f"Unknown dimension {name[:64]!r}.")
    return DIMENSIONS[canonical]
