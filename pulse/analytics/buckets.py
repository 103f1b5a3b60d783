"""Time buckets in a site's time zone, computed in Python so SQL stays portable.

SQLite has no time zones, so SQL never converts: within a range the UTC offset is
piecewise constant, and `offset_segments` lists the pieces (one per DST change).
SQL adds the right offset to the epoch seconds of a timestamp and divides; the
keys below are what that arithmetic yields, and `bucket_starts` lists every key of
a range so that empty buckets come back as zeros.

Keys: hour = UTC epoch of the local hour's start (so the repeated hour of a DST
fall-back is two buckets); day = local days since 1970-01-01; week = Monday-based
weeks since 1969-12-29; month = index of the month within the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

INTERVALS = ("hour", "day", "week", "month")
EPOCH_DAY = date(1970, 1, 1)
MAX_BUCKETS = 5000


@dataclass(frozen=True)
class Bucket:
    """One bucket: its SQL key, its local label and its UTC start."""

    key: int
    label: str
    start: datetime


def offset_at(tz: ZoneInfo, instant: datetime) -> int:
    """The zone's UTC offset in seconds at a UTC instant."""
    offset = instant.astimezone(tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def offset_segments(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """[(until, offset)]: `offset` applies to instants before `until`; the last until is `end`."""
    segments: list[tuple[datetime, int]] = []
    current = offset_at(tz, start)
    cursor = start
    while cursor < end:
        step = min(cursor + timedelta(days=1), end)
        if offset_at(tz, step) == current:
            cursor = step
            continue
        low, high = cursor, step  # offset(low) == current != offset(high)
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if offset_at(tz, middle) == current:
                low = middle
            else:
                high = middle
        change = high.replace(microsecond=0)
        if offset_at(tz, change) == current:
            change += timedelta(seconds=1)
        segments.append((change, current))
        current, cursor = offset_at(tz, change), change
    segments.append((end, current))
    return segments


def _epoch(instant: datetime) -> int:
    return int(instant.timestamp() // 1)


def key_of(instant: datetime, tz: ZoneInfo, interval: str, months: list[datetime]) -> int:
    """The bucket key of one instant: the Python twin of the SQL expression."""
    offset = offset_at(tz, instant)
    local = _epoch(instant) + offset
    if interval == "hour":
        return local // 3600 * 3600 - offset
    if interval == "day":
        return local // 86400
    if interval == "week":
        return (local // 86400 + 3) // 7
    index = 0
    for i, boundary in enumerate(months):
        if instant >= boundary:
            index = i
    return index


def month_starts(tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """UTC instants of the local first-of-month midnights covering [start, end)."""
    local = start.astimezone(tz)
    year, month = local.year, local.month
    starts = []
    while True:
        first = datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
        if first >= end and starts:
            break
        starts.append(first)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return starts


def bucket_count(start: datetime, end: datetime, interval: str) -> int:
    """An upper bound on the buckets of a range, to refuse absurd requests early."""
    seconds = max((end - start).total_seconds(), 0)
    size = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 28 * 86400}[interval]
    return int(seconds // size) + 2


def bucket_starts(tz: ZoneInfo, start: datetime, end: datetime, interval: str) -> list[Bucket]:
    """Every bucket that [start, end) touches, in order, with its local label."""
    if end <= start:
        return []
    if interval == "month":
        months = month_starts(tz, start, end)
        return [Bucket(i, m.astimezone(tz).date().isoformat(), m) for i, m in enumerate(months)]
    buckets: list[Bucket] = []
    if interval == "hour":
        key = key_of(start, tz, "hour", [])
        while (moment := datetime.fromtimestamp(key, UTC)) < end:
            buckets.append(Bucket(key, moment.astimezone(tz).isoformat(), moment))
            following = key_of(moment + timedelta(hours=1), tz, "hour", [])
            key = following if following > key else key + 3600
        return buckets
    first = start.astimezone(tz).date()
    last = (end - timedelta(microseconds=1)).astimezone(tz).date()
    if interval == "week":
        first -= timedelta(days=first.weekday())
    step = timedelta(days=7 if interval == "week" else 1)
    day = first
    while day <= last:
        number = (day - EPOCH_DAY).days
        key = number if interval == "day" else (number + 3) // 7
        moment = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        buckets.append(Bucket(key, day.isoformat(), moment))
        day += step
    return buckets


def default_interval(start: datetime, end: datetime) -> str:
    """Hours up to two days, days up to three months, months beyond."""
    span = end - start
    if span <= timedelta(days=2):
        return "hour"
    if span <= timedelta(days=92):
        return "day"
    return "month"
