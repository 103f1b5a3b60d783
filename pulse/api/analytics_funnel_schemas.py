"""Request and response models of the funnel and retention endpoints (seed 002 names)."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from pulse.analytics.funnel import MAX_STEPS, MAX_WINDOW_HOURS, MIN_STEPS
from pulse.api.analytics_schemas import QueryEcho


class FunnelStepIn(BaseModel):
    """A step as an object: exactly one of `page` (path, `*` wildcards) or `event`."""

    model_config = ConfigDict(extra="forbid")

    page: str | None = Field(default=None, max_length=1024, description="e.g. /pricing, /blog/*")
    event: str | None = Field(default=None, max_length=120, description="e.g. signup")
    properties: dict[str, str | int | float | bool] | None = Field(
        default=None, description="Property values the event must carry (all of them)"
    )
    label: str | None = Field(default=None, max_length=255)


class FunnelIn(BaseModel):
    """POST /funnel: steps in order; the range, filters and classification as in GET reports."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    steps: list[str | FunnelStepIn] = Field(
        min_length=MIN_STEPS,
        max_length=MAX_STEPS,
        description="Strings: `/path` or `/blog/*` (pageviews), `name` or `event:name` "
        "(events; `page_view` = any pageview), `;key=value` suffixes for properties",
    )
    conversion_window_hours: float | None = Field(
        default=None,
        gt=0,
        le=MAX_WINDOW_HOURS,
        validation_alias=AliasChoices("conversion_window_hours", "window_hours", "window"),
        description="Default 24; every step within this time of the first",
    )
    unit: str | None = Field(default=None, description="visitor (default), session or user")
    breakdown: str | None = Field(
        default=None, max_length=80, description="A dimension (country, device ...) or prop.<key>"
    )
    project: str | None = Field(default=None, max_length=255, description="Site-less paths")
    site: str | None = Field(default=None, max_length=255, description="Site-less paths")
    period: str | None = Field(default=None, max_length=32)
    range: int | None = Field(default=None, description="Hours back from now")
    since: str | None = Field(default=None, max_length=64)
    until: str | None = Field(default=None, max_length=64)
    classification: str | None = Field(default=None, max_length=64)
    limit: int | None = Field(default=None, description="Breakdown rows (default 10)")
    filters: dict[str, str] | None = Field(
        default=None, description='As the GET filters: {"country": "US", "prop.plan": "pro"}'
    )


class FunnelStepOut(BaseModel):
    step: int = Field(description="1-based position")
    name: str
    type: str = Field(description="page or event")
    match: str
    properties: dict[str, str]
    count: int = Field(description="Units that reached this step in order, within the window")
    conversion_rate: float = Field(description="0-1, from the previous step (1 for the first)")
    conversion_rate_from_start: float = Field(description="0-1, from the first step")
    drop_off: int = Field(description="Units lost since the previous step")
    drop_off_rate: float = Field(description="0-1")


class FunnelBreakdownRow(BaseModel):
    value: str | None
    entered: int
    converted: int
    overall_conversion_rate: float
    steps: list[FunnelStepOut]


class FunnelBreakdown(BaseModel):
    dimension: str
    rows: list[FunnelBreakdownRow]


class FunnelOut(BaseModel):
    query: QueryEcho
    unit: str = Field(description="visitor (daily id), session or user (user_id)")
    conversion_window_hours: float
    entered: int = Field(description="Units that did step 1")
    converted: int = Field(description="Units that did every step")
    overall_conversion_rate: float = Field(description="converted / entered, a 0-1 decimal")
    steps: list[FunnelStepOut]
    breakdown: FunnelBreakdown | None = Field(
        default=None, description="With `breakdown`: the busiest values first"
    )


class RetentionCohort(BaseModel):
    cohort: str = Field(description="Local date the cohort's day or week starts")
    start: str = Field(description="UTC")
    size: int
    returning: list[int] = Field(description="Users back k periods later; [0] is the size")
    rates: list[float] = Field(description="returning / size, 0-1")


class CohortRetentionOut(BaseModel):
    query: QueryEcho
    period: str = Field(description="day or week")
    periods: int
    identity: str = Field(description="The id followed across periods: user_id")
    users: int = Field(description="Identified users in all cohorts")
    unidentified_events: int = Field(description="Events left out: no user_id")
    cohorts: list[RetentionCohort]
    average_rates: list[float] = Field(
        description="By period offset, 0-1; [0] is always 1.0, retention starts at [1]"
    )


def step_dicts(steps: list[str | FunnelStepIn]) -> list[Any]:
    """Steps as `funnel.make_spec` reads them."""
    return [s if isinstance(s, str) else s.model_dump(exclude_none=True) for s in steps]
