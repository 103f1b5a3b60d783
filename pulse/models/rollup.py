"""Daily roll-ups of events and visits: what the common reports read instead of raw rows.

A roll-up covers one site and one closed UTC day, and for a site in another time
zone also the two parts of it on either side of the site's midnight. Visitor ids
rotate with the UTC day (the daily salt), so distinct visitors of different days
never overlap and the visitors of a range of whole days (or of a local day: the
tail of one UTC day and the head of the next) are a sum: exact, not estimated.

Each row holds one value of one dimension (`dim` "" is the site's total) for the
visitors whose traffic on that value had the same set of labels: `mask` has bit 1
for human, 2 for agent, 4 for bot. A visitor seen as human and as bot on the same
page is one row of mask 5, so a report of "humans and bots" counts them once.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from pulse.extensions import db
from pulse.models.types import UTCDateTime

LABEL_BITS = {"human": 1, "agent": 2, "bot": 4}
# What a build writes: 1 the dimensions, 2 also the `@client` combinations, 3 also
# the journeys (on PostgreSQL), 4 also the agents' pages, 5 also each user-day's first
# and last hit, 6 also the two parts of the day on either side of the site's local
# midnight (sites outside UTC), 7 also the journeys of those two parts.
ROLLUP_LAYOUT = 7
AGENT_PAGES_LAYOUT = 4
USER_SPANS_LAYOUT = 5
PARTS_LAYOUT = 6
JOURNEY_PARTS_LAYOUT = 7
# `part` of a roll-up row: the whole UTC day, or (on a site whose local midnight falls
# inside it, at `RollupDay.split`) the hours before or from that midnight.
WHOLE, HEAD, TAIL = 0, 1, 2


class RollupDay(db.Model):
    """Whether a site's day has a roll-up that matches its raw rows.

    Writes of a closed day, and late writes to the current one (rollups.LATE), bump
    `version`; a build records the version it started from. The roll-up answers
    queries only while `built_version == version`.
    """

    __tablename__ = "rollup_days"

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    built_version: Mapped[int | None] = mapped_column(Integer)
    built_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The ROLLUP_LAYOUT the day was built with; an older one is rebuilt in the background.
    layout: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="1")
    # Whether `rollup_journeys` holds the day (funnels read them where it does).
    journeys: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    # Set while the day is not over: the roll-up holds only its hits before `cut`
    # (no users or agent pages), and readers add what came after (rollups.py).
    cut: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # With a cut: the roll-up's visits are those last seen before `settled` (the cut
    # less the visit timeout), which no later hit changes. NULL: no visits rolled up.
    settled: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The site's local midnight inside the day when it was built: its HEAD and TAIL
    # rows end and start there. NULL: only WHOLE rows (UTC sites, days not over).
    split: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RollupHit(db.Model):
    """Hits of one day per dimension value and label set: visitors, pageviews, events."""

    __tablename__ = "rollup_hits"
    __table_args__ = (Index("ix_rollup_hits_site_dim_day", "site_id", "dim", "day", "part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, nullable=False)
    part: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    dim: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[str | None] = mapped_column(String(1024))
    mask: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    visitors: Mapped[int] = mapped_column(Integer, nullable=False)
    pageviews_human: Mapped[int] = mapped_column(Integer, nullable=False)
    pageviews_agent: Mapped[int] = mapped_column(Integer, nullable=False)
    pageviews_bot: Mapped[int] = mapped_column(Integer, nullable=False)
    events_human: Mapped[int] = mapped_column(Integer, nullable=False)
    events_agent: Mapped[int] = mapped_column(Integer, nullable=False)
    events_bot: Mapped[int] = mapped_column(Integer, nullable=False)


class RollupVisit(db.Model):
    """Visits started on one day per dimension value and label set, summed per label."""

    __tablename__ = "rollup_visits"
    __table_args__ = (Index("ix_rollup_visits_site_dim_day", "site_id", "dim", "day", "part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, nullable=False)
    part: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    dim: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[str | None] = mapped_column(String(1024))
    mask: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    visitors: Mapped[int] = mapped_column(Integer, nullable=False)
    sessions_human: Mapped[int] = mapped_column(Integer, nullable=False)
    sessions_agent: Mapped[int] = mapped_column(Integer, nullable=False)
    sessions_bot: Mapped[int] = mapped_column(Integer, nullable=False)
    pageviews_human: Mapped[int] = mapped_column(Integer, nullable=False)
    pageviews_agent: Mapped[int] = mapped_column(Integer, nullable=False)
    pageviews_bot: Mapped[int] = mapped_column(Integer, nullable=False)
    bounces_human: Mapped[int] = mapped_column(Integer, nullable=False)
    bounces_agent: Mapped[int] = mapped_column(Integer, nullable=False)
    bounces_bot: Mapped[int] = mapped_column(Integer, nullable=False)
    duration_human: Mapped[int] = mapped_column(Integer, nullable=False)
    duration_agent: Mapped[int] = mapped_column(Integer, nullable=False)
    duration_bot: Mapped[int] = mapped_column(Integer, nullable=False)
    scored_human: Mapped[int] = mapped_column(Integer, nullable=False)
    scored_agent: Mapped[int] = mapped_column(Integer, nullable=False)
    scored_bot: Mapped[int] = mapped_column(Integer, nullable=False)
    score_human: Mapped[float] = mapped_column(Float, nullable=False)
    score_agent: Mapped[float] = mapped_column(Float, nullable=False)
    score_bot: Mapped[float] = mapped_column(Float, nullable=False)


class RollupUser(db.Model):
    """Hits of one day per signed-in user (`user_id`, NULL for the rest) and label.

    Retention reads these (user, day) pairs instead of every event: a day's rows are
    its distinct users, not its hits. On a site in another time zone a UTC day
    touches two local days; the first and last hit say which of them the user was in.
    """

    __tablename__ = "rollup_users"
    __table_args__ = (Index("ix_rollup_users_site_day", "site_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, nullable=False)
    user_id: Mapped[str | None] = mapped_column(String(128))
    label: Mapped[str] = mapped_column(String(8), nullable=False)
    events: Mapped[int] = mapped_column(Integer, nullable=False)
    # The day's first and last hit: the site's local days it touched (at most two).
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RollupAgentPage(db.Model):
    """Hits of one day by an agent or bot on one page, per label and category.

    The agents report reads these: hits, pages read, top pages, first and last seen,
    the dominant label and category, and (for UTC sites) the daily trend.
    """

    __tablename__ = "rollup_agent_pages"
    __table_args__ = (Index("ix_rollup_agent_pages_site_day", "site_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, nullable=False)
    agent_name: Mapped[str] = mapped_column(String(100), nullable=False)
    label: Mapped[str] = mapped_column(String(8), nullable=False)
    agent_category: Mapped[str | None] = mapped_column(String(32))
    pathname: Mapped[str] = mapped_column(String(1024), nullable=False)
    hits: Mapped[int] = mapped_column(Integer, nullable=False)
    pageviews: Mapped[int] = mapped_column(Integer, nullable=False)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class RollupItem(db.Model):
    """What a journey step can be, for one site: a pageview of a path (`path`) or an
    event by name (`path` ""). `code` is the item's character in journeys."""

    __tablename__ = "rollup_items"
    __table_args__ = (
        UniqueConstraint("site_id", "name", "path", name="uq_rollup_items_name_path"),
    )

    site_id: Mapped[int] = mapped_column(
        ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    path: Mapped[str] = mapped_column(String(1024), nullable=False)


class RollupJourney(db.Model):
    """The visitors of one day and label whose hits of that label, in time order, make
    one journey: a string of item characters, with a space wherever time moves on
    (hits at the same instant are not separated). Visitor ids are daily, so a
    visitor's funnel lies within one journey."""

    __tablename__ = "rollup_journeys"
    __table_args__ = (Index("ix_rollup_journeys_site_day", "site_id", "day", "label", "part"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date, nullable=False)
    # WHOLE, HEAD or TAIL, as on rollup_hits (from JOURNEY_PARTS_LAYOUT on).
    part: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="0")
    label: Mapped[str] = mapped_column(String(8), nullable=False)
    journey: Mapped[str] = mapped_column(Text, nullable=False)
    visitors: Mapped[int] = mapped_column(Integer, nullable=False)
