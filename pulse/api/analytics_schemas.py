"""Response models of the analytics endpoints (for the OpenAPI document and `?fields=`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class QueryEcho(BaseModel):
    site_id: int
    timezone: str
    period: str
    start: str = Field(description="UTC, inclusive")
    end: str = Field(description="UTC, exclusive")
    classification: list[str]
    filters: dict[str, Any]


class Comparison(BaseModel):
    current: float
    previous: float
    change: float
    change_pct: float | None = Field(description="Percent; null when previous is 0")


class ClassCounts(BaseModel):
    visitors: int
    pageviews: int
    sessions: int


class Period(BaseModel):
    start: str
    end: str


class TimeseriesPoint(BaseModel):
    date: str = Field(description="Local date, or local ISO datetime for hours")
    visitors: int
    pageviews: int
    events: int
    sessions: int
    bounce_rate: float
    visit_duration: int
    humans: int
    agents: int
    bots: int


class StatsOut(BaseModel):
    query: QueryEcho
    visitors: int = Field(description="Distinct daily visitor ids")
    pageviews: int
    events: int = Field(description="Custom events")
    total_events: int = Field(description="Pageviews plus custom events")
    sessions: int
    bounce_rate: float = Field(description="Percent")
    visit_duration: int = Field(description="Average, seconds")
    views_per_visit: float
    humans: int = Field(description="Visitors classified human, whatever the filter")
    agents: int
    bots: int
    detection_rate: float = Field(description="Percent of visitors that are agents or bots")
    by_classification: dict[str, ClassCounts]
    unique_users: int = Field(description="Seed 002 name of visitors")
    total_sessions: int = Field(description="Seed 002 name of sessions")
    metrics: dict[str, Comparison] | None = Field(default=None, description="With compare=previous")
    previous_period: Period | None = None
    timeseries: list[TimeseriesPoint] | None = Field(
        default=None, description="With groupBy/interval"
    )


class TimeseriesOut(BaseModel):
    query: QueryEcho
    interval: str
    points: list[TimeseriesPoint]


class BreakdownRow(BaseModel):
    """Also a key named after the dimension (e.g. `page`) holding the value."""

    model_config = ConfigDict(extra="allow")

    value: str | None
    visitors: int
    pageviews: int
    events: int | None = Field(default=None, description="Hit dimensions")
    sessions: int | None = Field(default=None, description="Session dimensions")
    bounce_rate: float | None = Field(default=None, description="Session dimensions")
    visit_duration: int | None = Field(default=None, description="Session dimensions")
    humans: int
    agents: int
    bots: int
    agent_share: float = Field(description="Percent of the row's visitors that are agents")


class BreakdownOut(BaseModel):
    query: QueryEcho
    dimension: str
    rows: list[BreakdownRow]


class DailySessions(BaseModel):
    date: str
    sessions: int
    visitors: int
    pageviews: int
    bounce_rate: float
    humans: int
    agents: int
    bots: int


class DailySessionsOut(BaseModel):
    query: QueryEcho
    days: list[DailySessions]


class EngagementBucket(BaseModel):
    bucket: str
    min: float | None
    max: float | None = Field(description="Exclusive")
    sessions: int
    share: float
    humans: int
    agents: int
    bots: int


class EngagementOut(BaseModel):
    query: QueryEcho
    sessions: int
    scored_sessions: int
    average_score: float | None
    buckets: list[EngagementBucket]


class RealtimeOut(BaseModel):
    query: QueryEcho
    window_seconds: int
    visitors: int
    active_sessions: int
    pageviews: int
    events: int
    humans: int
    agents: int
    bots: int
    agent_share: float
    pages: list[BreakdownRow]
