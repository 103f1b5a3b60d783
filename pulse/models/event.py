"""Tracked events, the sessions (visits) they form, and the daily visitor-id salt."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pulse.extensions import db
from pulse.models.types import UTCDateTime

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Event(db.Model):
    """One hit: a pageview or a named event. No IP address, no cookie id.

    `visitor_id` is a keyed hash of (daily salt, site, IP, user agent) that changes
    every day; `user_agent` is kept only for non-human traffic, so a user can audit
    the verdict.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("site_id", "event_uid", name="uq_events_site_uid"),
        Index("ix_events_site_ts", "site_id", "ts"),
        Index("ix_events_session", "session_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    event_uid: Mapped[str] = mapped_column(String(64), nullable=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False, default="pageview")
    session_id: Mapped[str] = mapped_column(String(64), nullable=False)
    visitor_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    user_id: Mapped[str | None] = mapped_column(String(128))
    hostname: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    pathname: Mapped[str] = mapped_column(String(1024), nullable=False, default="/")
    referrer: Mapped[str | None] = mapped_column(String(2048))
    referrer_host: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32), nullable=False, default="direct")
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    utm_term: Mapped[str | None] = mapped_column(String(255))
    utm_content: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    browser: Mapped[str | None] = mapped_column(String(50))
    browser_version: Mapped[str | None] = mapped_column(String(20))
    os: Mapped[str | None] = mapped_column(String(50))
    device: Mapped[str | None] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(8), nullable=False, default="human")
    agent_name: Mapped[str | None] = mapped_column(String(100))
    agent_category: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    user_agent: Mapped[str | None] = mapped_column(Text)
    props: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    engaged_ms: Mapped[int | None] = mapped_column(Integer)
    scroll_depth: Mapped[int | None] = mapped_column(SmallInteger)


class Visit(db.Model):
    """A session: a visitor's hits with no gap of 30 minutes, with its verdict."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_site_started", "site_id", "started_at"),
        # Not last_seen_at, which nearly every event changes: updates stay in place (HOT;
        # migration 0011 also leaves a fifth of each page free on PostgreSQL).
        Index("ix_visits_site_visitor", "site_id", "visitor_id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entry_path: Mapped[str] = mapped_column(String(1024), nullable=False, default="/")
    exit_path: Mapped[str] = mapped_column(String(1024), nullable=False, default="/")
    hostname: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    pageviews: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    events: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    duration_s: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    is_bounce: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    engagement_score: Mapped[float | None] = mapped_column(Float)
    referrer_host: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32), nullable=False, default="direct")
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    browser: Mapped[str | None] = mapped_column(String(50))
    os: Mapped[str | None] = mapped_column(String(50))
    device: Mapped[str | None] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(8), nullable=False, default="human")
    agent_name: Mapped[str | None] = mapped_column(String(100))
    agent_category: Mapped[str | None] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    tier: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[list[str]] = mapped_column(JSON, nullable=False, default=list)
    # What re-scoring at session end needs: log-odds, declared, client, operator.
    detection: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    user_agent: Mapped[str | None] = mapped_column(Text)
    behaviour: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)


class DailySalt(db.Model):
    """The secret mixed into visitor ids for one UTC day; deleted after two days."""

    __tablename__ = "daily_salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
