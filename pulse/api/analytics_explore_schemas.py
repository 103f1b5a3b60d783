"""Models of the explorer endpoints: responses (OpenAPI, `?fields=`) and the POST /query body."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints

from pulse.api.analytics_schemas import QueryEcho

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Scalar = Annotated[str, StringConstraints(max_length=1024)] | int | float | bool | None


class EventOut(BaseModel):
    id: str = Field(description="The event's uid")
    event: str = Field(description="pageview or the custom event's name")
    page: str
    hostname: str
    timestamp: str = Field(description="UTC, ISO 8601")
    local_time: str = Field(description="The same instant in the site's time zone")
    session_id: str
    properties: dict[str, Any]
    source: str | None
    channel: str | None
    referrer: str | None = Field(description="Referring host (never the full URL)")
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    country: str | None
    device: str | None
    browser: str | None
    os: str | None
    classification: str = Field(description="human, agent or bot (this hit's verdict)")
    agent: str | None
    agent_category: str | None


class EventsOut(BaseModel):
    query: QueryEcho
    events: list[EventOut] = Field(description="Newest first")
    count: int
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page")


class SessionOut(BaseModel):
    session_id: str
    started_at: str
    local_start: str = Field(description="Start in the site's time zone")
    last_seen_at: str
    ended_at: str | None
    duration: int = Field(description="Seconds")
    entry_page: str
    exit_page: str
    hostname: str
    pageviews: int
    events: int
    bounce: bool
    engagement_score: float | None
    source: str | None
    channel: str | None
    referrer: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    country: str | None
    device: str | None
    browser: str | None
    os: str | None
    classification: str = Field(description="The visit's verdict: human, agent or bot")
    agent: str | None
    agent_category: str | None


class SessionsOut(BaseModel):
    query: QueryEcho
    sessions: list[SessionOut] = Field(description="Newest first")
    count: int
    limit: int
    next_cursor: str | None


class DurationBucket(BaseModel):
    bucket: str
    min_seconds: int
    max_seconds: int | None = Field(description="Exclusive; null for the last bucket")
    sessions: int
    share: float = Field(description="Percent of the sessions")
    humans: int = Field(description="Sessions per verdict, whatever the classification")
    agents: int
    bots: int


class DistributionOut(BaseModel):
    query: QueryEcho
    sessions: int
    average_duration: int = Field(description="Seconds")
    distribution: list[DurationBucket]


class SessionDetailOut(BaseModel):
    session: SessionOut
    events: list[EventOut] = Field(description="In order, session_end included")
    count: int


class EventName(BaseModel):
    event: str
    count: int = Field(description="Hits with this name")
    visitors: int


class ValueCount(BaseModel):
    value: str | None
    count: int


class PropertyKey(BaseModel):
    key: str
    count: int = Field(description="Hits carrying the key")
    events: list[str] = Field(description="Event names that carried it")
    top_values: list[ValueCount]


class PropertiesOut(BaseModel):
    query: QueryEcho
    events: list[EventName]
    properties: list[PropertyKey]
    sampled: bool = Field(description="True when only the newest 50,000 hits were read")


class ReceivedKey(BaseModel):
    key: str
    count: int
    types: list[str] = Field(description="string, number, boolean, null, array, object")
    last_seen: str


class ReceivedEvent(BaseModel):
    event: str
    count: int
    properties: list[ReceivedKey]


class PropertiesReceivedOut(BaseModel):
    query: QueryEcho
    events: list[ReceivedEvent]
    sampled: bool


class HeatmapCell(BaseModel):
    day: int = Field(description="0 = Monday")
    day_name: str
    hour: int = Field(description="0-23, site time")
    visitors: int
    pageviews: int
    events: int
    humans: int | None = None
    agents: int | None = None
    bots: int | None = None


class HeatmapOut(BaseModel):
    query: QueryEcho
    timezone: str
    metric: str
    days: list[str]
    heatmap: list[HeatmapCell] = Field(description="Cells with traffic only; empty without data")
    grid: list[list[int]] = Field(description="7 rows (Monday first) of 24 hours of `metric`")
    peak: HeatmapCell | None = Field(description="The busiest cell; null without data")


class FilterIn(BaseModel):
    """One filter: a dimension (or prop.<key>), an operator and a value or list of values."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    field: Name = Field(validation_alias=AliasChoices("field", "property", "dimension", "key"))
    op: Name = Field(default="eq", validation_alias=AliasChoices("op", "operator"))
    value: Scalar | list[Scalar] = Field(
        default=None, validation_alias=AliasChoices("value", "values")
    )


class QueryIn(BaseModel):
    """Seed 002's flexible query."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    metrics: Name | list[Name] = Field(
        default_factory=lambda: ["visitors"], description="visitors, pageviews, sessions, ..."
    )
    group_by: Name | list[Name] | None = Field(
        default=None,
        validation_alias=AliasChoices("group_by", "groupBy", "dimensions"),
        description="Up to 3 dimensions, prop.<key> or hour/day/week/month",
    )
    filters: list[FilterIn] | dict[Name, Scalar | list[Scalar]] = Field(default_factory=list)
    order_by: Name | None = Field(
        default=None,
        validation_alias=AliasChoices("order_by", "orderBy", "sort"),
        description="A metric or group_by field; a leading - sorts descending",
    )
    order: Name | None = Field(default=None, description="asc or desc")
    limit: int = Field(default=100, ge=1, le=1000, strict=True)
    period: Name | None = None
    range: int | Name | None = Field(default=None, description="Hours back from now")
    since: Name | int | None = None
    until: Name | int | None = None
    classification: Name | list[Name] | None = None
    project: Name | int | None = Field(
        default=None,
        validation_alias=AliasChoices("project", "site", "site_id", "project_id"),
        description="Site-less path: the site's id, key, name or domain",
    )


class QueryRowsOut(BaseModel):
    query: QueryEcho
    metrics: list[str]
    group_by: list[str]
    order_by: str
    order: str
    limit: int
    total_rows: int
    rows: list[dict[str, Any]] = Field(description="group_by fields then metrics, by name")
