"""Element clicks on a page and visitor analytics as JSON (seed 000's /elements, /visitors)."""

from __future__ import annotations

from pydantic import BaseModel

from pulse.accounts.actor import Actor
from pulse.analytics import elements, reports
from pulse.api.analytics import LIMIT, _answer, _op
from pulse.api.analytics_schemas import QueryEcho


class ElementRow(BaseModel):
    selector: str | None
    tag: str | None
    text: str | None
    href: str | None
    clicks: int
    visitors: int
    share: float


class ElementsOut(BaseModel):
    query: QueryEcho
    page: str | list[str | None] | None
    total_clicks: int
    elements: list[ElementRow]


class VisitorPoint(BaseModel):
    date: str
    visitors: int
    humans: int
    agents: int
    bots: int


class ValueVisitors(BaseModel):
    value: str | None
    visitors: int


class VisitorsOut(BaseModel):
    query: QueryEcho
    visitors: int
    by_classification: dict[str, int]
    humans: int
    agents: int
    bots: int
    interval: str
    timeseries: list[VisitorPoint]
    country: list[ValueVisitors]
    device: list[ValueVisitors]
    browser: list[ValueVisitors]
    os: list[ValueVisitors]


@_op(
    "/elements",
    "Element clicks on one page (requires `page`)",
    ElementsOut,
    "/api/v1/elements",
    params=LIMIT,
)
def analytics_elements(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Which buttons and links of a page are clicked: pulse.js `element_click` events."""
    return _answer(actor, site_id, team, elements.element_clicks)


@_op("/visitors", "Visitors: kinds, trend, countries and devices", VisitorsOut, "/api/v1/visitors")
def analytics_visitors(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Visitor analytics (seed 000): humans, agents and bots, per day, where and on what."""
    return _answer(actor, site_id, team, reports.visitors)
