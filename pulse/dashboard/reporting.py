"""The state of a report page (range, filters, classification) kept in the URL.

A `Report` parses the request arguments once with the analytics query parser (the
same one the JSON API uses, so the same URL arguments give the same numbers), keeps
a canonical copy of them for links, and builds the URLs of every control: presets,
toggles, removable filter chips, and the rows that add a filter when clicked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from flask import request, url_for

from pulse.analytics import raw
from pulse.analytics.query import LABELS, NONE_VALUE, Query, parse_query
from pulse.models import Site, Team

RANGE_KEYS = ("period", "range", "since", "until")
DEFAULT_PERIOD = "7d"
PRESETS = (
    ("today", "Today"),
    ("24h", "24 hours"),
    ("7d", "7 days"),
    ("30d", "30 days"),
    ("90d", "90 days"),
    ("month", "This month"),
    ("12mo", "12 months"),
)
CLASSES = (
    ("human", "Humans"),
    ("agent", "AI agents"),
    ("bot", "Bots"),
    ("agent,bot", "Agents + bots"),
    ("all", "All traffic"),
)
DIMENSION_NAMES = {
    "page": "Page",
    "hostname": "Hostname",
    "event": "Event",
    "entry_page": "Entry page",
    "exit_page": "Exit page",
    "source": "Source",
    "channel": "Channel",
    "referrer": "Referrer",
    "utm_source": "UTM source",
    "utm_medium": "UTM medium",
    "utm_campaign": "UTM campaign",
    "utm_term": "UTM term",
    "utm_content": "UTM content",
    "country": "Country",
    "browser": "Browser",
    "os": "OS",
    "device": "Device",
    "agent": "Agent",
    "agent_category": "Agent category",
}


def dimension_name(name: str) -> str:
    """A dimension as a person reads it ('prop.plan' is 'plan')."""
    if name.startswith("prop."):
        return name[5:]
    return DIMENSION_NAMES.get(name, name.replace("_", " ").capitalize())


def classification_value(labels: tuple[str, ...] | None) -> str:
    """The canonical URL value of a classification ('human', 'agent,bot', 'all')."""
    return "all" if labels is None else ",".join(label for label in LABELS if label in labels)


@dataclass
class Report:
    """One report page's question and the links that change it."""

    team: Team
    site: Site
    query: Query
    state: dict[str, Any]  # str values; a list for a repeated argument (funnel steps)
    default_classification: str

    @property
    def classification(self) -> str:
        return classification_value(self.query.labels)

    @property
    def compare(self) -> bool:
        return self.state.get("compare") == "previous"

    def url(self, endpoint: str, **changes: Any) -> str:
        """`endpoint` for this site with the current state, changed (None removes a key)."""
        args = dict(self.state)
        if any(key in changes for key in RANGE_KEYS):
            for key in RANGE_KEYS:
                args.pop(key, None)
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
        if args.get("classification") == self.default_classification:
            args.pop("classification")
        return url_for(endpoint, team=self.team.slug, site_id=self.site.id, **args)

    def action(self) -> str:
        """This page's URL without arguments, for GET forms (their fields are the state)."""
        return url_for(
            request.endpoint or "dashboard.site_overview", team=self.team.slug, site_id=self.site.id
        )

    def here(self, **changes: Any) -> str:
        """This page's URL with some state changed."""
        return self.url(request.endpoint or "dashboard.site_overview", **changes)

    def filter_url(self, endpoint: str, dimension: str, value: Any) -> str:
        """The page filtered on one more dimension value (a row that was clicked)."""
        return self.url(endpoint, **{dimension: NONE_VALUE if value is None else str(value)})

    def chips(self, endpoint: str) -> list[dict[str, str]]:
        """Active filters as (name, value, URL without it)."""
        chips = []
        for f in self.query.filters:
            shown = " or ".join(NONE_VALUE if v is None else v for v in f.values)
            chips.append(
                {
                    "name": dimension_name(f.dimension.name),
                    "value": shown,
                    "remove": self.url(endpoint, **{f.dimension.name: None}),
                }
            )
        return chips

    def clear(self, endpoint: str) -> str:
        """The page without any filter (range, classification and compare stay)."""
        return self.url(endpoint, **{f.dimension.name: None for f in self.query.filters})

    def presets(self) -> list[dict[str, Any]]:
        explicit = any(self.state.get(key) for key in RANGE_KEYS)
        current = self.state.get("period") if explicit else DEFAULT_PERIOD
        return [
            {"value": v, "label": label, "url": self.here(period=v), "active": v == current}
            for v, label in PRESETS
        ]

    def classes(self) -> list[dict[str, Any]]:
        mine = self.classification
        return [
            {"value": v, "label": label, "url": self.here(classification=v), "active": v == mine}
            for v, label in CLASSES
        ]

    def with_query(self, **changes: Any) -> Query:
        return replace(self.query, **changes)


def _canonical(args: Mapping[str, str], query: Query, default_classification: str) -> dict:
    state: dict[str, Any] = {}
    if args.get("period"):
        state["period"] = args["period"]
    elif args.get("since"):
        state["since"] = args["since"]
        if args.get("until"):
            state["until"] = args["until"]
    elif args.get("range"):
        state["range"] = args["range"]
    classification = classification_value(query.labels)
    if classification != default_classification:
        state["classification"] = classification
    if query.compare:
        state["compare"] = "previous"
    for f in query.filters:
        state[f.dimension.name] = "|".join(NONE_VALUE if v is None else v for v in f.values)
    return state


def load_report(
    team: Team,
    site: Site,
    args: Mapping[str, str] | None = None,
    *,
    classification: tuple[str, ...] | None = ("human",),
    limit: int = 10,
    keep: tuple[str, ...] = (),
) -> Report:
    """The Report of these arguments (the request's by default); bad ones raise a 422.

    `keep` names a page's own arguments (funnel steps, heatmap metric) that its links
    carry along with the range and filters.
    """
    source = args if args is not None else request.args
    original = dict(source.items())
    for name in keep:
        original.pop(name, None)
    given = dict(original)
    if not any(given.get(key) for key in ("period", "range", "since")):
        given["period"] = DEFAULT_PERIOD  # not written into the URLs: it is the default
        given.pop("until", None)
        original.pop("until", None)
    query = parse_query(
        site,
        given,
        first_seen=lambda: raw.first_event_at(site.id),
        classification=classification,
        limit=limit,
    )
    default = classification_value(classification)
    state = _canonical(original, query, default)  # aliases such as `label` become canonical
    for name in keep:
        values = source.getlist(name) if hasattr(source, "getlist") else [source.get(name)]
        values = [v for v in values if v]
        if len(values) == 1:
            state[name] = values[0]
        elif values:
            state[name] = values
    return Report(team, site, query, state, default)
