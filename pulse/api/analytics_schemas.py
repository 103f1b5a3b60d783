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


class AnomalyFlag(BaseModel):
    """Seed 002's "anomaly flags": a rule that fired on a period comparison."""

    flag: str = Field(
        description="bounce_rate_spike, zero_unique_users, traffic_drop, traffic_spike "
        "or agent_share_spike"
    )
    metric: str
    severity: str = Field(description="warning or critical")
    message: str


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
    anomaly_flags: list[AnomalyFlag] | None = Field(
        default=None, description="Insights: seed 002's anomaly flags on the comparison"
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


class AgentNow(BaseModel):
    agent: str | None
    visitors: int
    hits: int


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
    agents_now: list[AgentNow] = Field(description="Agents and bots seen in the window")


class AgentTopPage(BaseModel):
    page: str
    hits: int


class AgentTrendPoint(BaseModel):
    date: str = Field(description="Local date, or local ISO datetime for hours")
    hits: int


class AgentTrend(Comparison):
    """Hits in the range against the previous period, and hits per bucket."""

    series: list[AgentTrendPoint]


class AgentRow(BaseModel):
    agent: str = Field(description="The agent's name (also in `value` and `name`)")
    value: str
    name: str
    category: str | None = Field(description="Most frequent detection category")
    label: str | None = Field(description="Most frequent classification: agent or bot")
    hits: int = Field(description="Pageviews plus custom events")
    pageviews: int
    events: int
    visitors: int = Field(description="Distinct daily visitor ids")
    pages: int = Field(description="Distinct pages read")
    top_pages: list[AgentTopPage]
    first_seen: str | None = Field(description="UTC, within the range")
    last_seen: str | None = Field(description="UTC, within the range")
    trend: AgentTrend


class AgentsOut(BaseModel):
    query: QueryEcho
    dimension: str
    interval: str = Field(description="Buckets of each trend series")
    agents_seen: int = Field(description="Distinct agents in the range (rows are the top `limit`)")
    total_hits: int
    rows: list[AgentRow]


class AgentPage(BaseModel):
    page: str
    hits: int
    pageviews: int
    first_seen: str
    last_seen: str


class AgentOut(AgentRow):
    query: QueryEcho
    interval: str
    pages_read: list[AgentPage] = Field(description="Every page it read (top `limit`)")


class AnomalyPoint(BaseModel):
    date: str
    start: str = Field(description="UTC start of the bucket")
    hits: int = Field(description="Hits of the selected classification")
    expected: float | None = Field(description="Median of the same bucket in earlier weeks")
    lower: float | None
    upper: float | None
    score: float | None = Field(description="Distance from the median in robust spreads")
    agent_share: float = Field(description="Percent of all hits that are AI agents")
    expected_agent_share: float | None


class Anomaly(BaseModel):
    type: str = Field(description="spike, drop or agent_share_spike")
    metric: str = Field(description="hits or agent_share")
    date: str
    start: str
    end: str
    value: float
    expected: float
    score: float
    severity: str = Field(description="warning, or critical beyond twice the threshold")
    message: str


class Baseline(BaseModel):
    method: str
    weeks: int
    threshold: float
    min_volume: int
    min_history: int


class AnomaliesOut(BaseModel):
    query: QueryEcho
    interval: str = Field(description="hour (ranges up to 7 days) or day")
    baseline: Baseline
    series: list[AnomalyPoint]
    anomalies: list[Anomaly]
    anomaly_flags: list[AnomalyFlag]
