"""`Query`: what a report is asked about, parsed once from request arguments.

A Query is a site, a UTC range [start, end) computed in the site's time zone,
filters, and the traffic classes to count. The range comes from one of: `range`
(hours back from now, seed 000), `period` (seed 002's names), or `since`/`until`
(dates or datetimes in the site's zone; a date `until` includes that day). Bad
values raise ValidationFailed naming the parameter, so every caller answers 422
the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pulse.analytics.buckets import INTERVALS, MAX_BUCKETS, bucket_count, default_interval
from pulse.analytics.dimensions import FILTER_ALIASES, Dimension, dimension
from pulse.errors import ValidationFailed

LABELS = ("human", "agent", "bot")
LABEL_ALIASES = {
    "human": "human",
    "humans": "human",
    "agent": "agent",
    "agents": "agent",
    "ai": "agent",
    "ai_agent": "agent",
    "bot": "bot",
    "bots": "bot",
    "crawler": "bot",
}
CLASSIFICATION_PARAMS = ("classification", "label", "labels", "traffic", "visitor_type")
PERIODS = ("today", "yesterday", "24h", "7d", "30d", "90d", "12mo", "month", "all")
PERIOD_ALIASES = {"day": "today", "1d": "24h", "week": "7d", "1y": "12mo", "year": "12mo"}
INTERVAL_PARAMS = ("interval", "groupBy", "group_by", "granularity")
INTERVAL_ALIASES = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
MAX_RANGE_HOURS = 24 * 366 * 10
MAX_LIMIT = 1000
MAX_VALUE = 1024
NONE_VALUE = "(none)"
REALTIME_WINDOW = timedelta(minutes=5)


class SiteLike(Protocol):
    id: int
    timezone: str


@dataclass(frozen=True)
class Filter:
    """`dimension` equals one of `values` (None stands for "no value")."""

    dimension: Dimension
    values: tuple[str | None, ...]


@dataclass(frozen=True)
class Query:
    """One report request. `labels` None means every class of traffic."""

    site_id: int
    timezone: str
    start: datetime
    end: datetime
    now: datetime
    filters: tuple[Filter, ...] = ()
    labels: tuple[str, ...] | None = ("human",)
    period: str = "custom"
    compare: bool = False
    interval: str | None = None
    limit: int = 10
    # How to step back one period: ("days" | "months" | "seconds", amount).
    shift: tuple[str, int] = field(default=("seconds", 0))

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def bucket_interval(self) -> str:
        """The requested interval, or a sensible one for the range."""
        return self.interval or default_interval(self.start, self.end)

    def previous(self) -> Query:
        """The period of equal length just before this one (calendar-aligned when it is)."""
        unit, amount = self.shift
        if unit == "seconds":
            length = timedelta(seconds=amount)
            return replace(self, start=self.start - length, end=self.end - length, compare=False)
        return replace(
            self,
            start=_shift_local(self.start, self.tz, unit, amount),
            end=_shift_local(self.end, self.tz, unit, amount),
            compare=False,
        )

    def window(self, start: datetime, end: datetime) -> Query:
        """The same question over another range (realtime uses the last minutes)."""
        return replace(self, start=start, end=end, compare=False)

    def describe(self) -> dict[str, Any]:
        """The query as the API echoes it back."""
        filters: dict[str, Any] = {}
        for f in self.filters:
            shown = [NONE_VALUE if v is None else v for v in f.values]
            filters[f.dimension.name] = shown[0] if len(shown) == 1 else shown
        return {
            "site_id": self.site_id,
            "timezone": self.timezone,
            "period": self.period,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "classification": list(self.labels) if self.labels else ["all"],
            "filters": filters,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _shift_local(moment: datetime, tz: ZoneInfo, unit: str, amount: int) -> datetime:
    """Step back `amount` days or months on the local wall clock."""
    local = moment.astimezone(tz).replace(tzinfo=None)
    if unit == "days":
        local -= timedelta(days=amount)
    else:
        month_index = local.year * 12 + local.month - 1 - amount
        year, month = divmod(month_index, 12)
        local = local.replace(year=year, month=month + 1, day=min(local.day, 28))
    return local.replace(tzinfo=tz).astimezone(UTC)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant a local day starts (ranges start here; roll-ups split here)."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


class _Errors(dict[str, list[str]]):
    def add(self, name: str, message: str) -> None:
        self.setdefault(name, []).append(message)


def _first(args: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str] | None:
    for name in names:
        value = args.get(name)
        if value is not None and value != "":
            return name, value
    return None


def parse_moment(raw: str, tz: ZoneInfo, *, end_of_day: bool = False) -> datetime:
    """A date, an ISO datetime (naive = site time) or epoch seconds/milliseconds, in UTC."""
    text = raw.strip()
    if text.isdigit() and len(text) <= 14:
        number = int(text)
        moment = datetime.fromtimestamp(number / 1000 if number > 10**11 else number, UTC)
    elif len(text) == 10:
        day = date.fromisoformat(text)
        moment = local_midnight(day + timedelta(days=1) if end_of_day else day, tz)
    else:
        parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        moment = parsed.astimezone(UTC)
    if not 1971 <= moment.year <= 2200:
        raise ValueError("out of range")
    return moment


def _range(
    args: Mapping[str, str],
    tz: ZoneInfo,
    now: datetime,
    first_seen: Callable[[], datetime | None] | None,
    errors: _Errors,
) -> tuple[datetime, datetime, str, tuple[str, int]]:
    """(start, end, period name, shift) from range, period or since/until."""
    given = [n for n in ("range", "period", "since") if args.get(n)]
    if len(given) > 1:
        both = " and ".join(given)
        errors.add(given[1], f"Give one of range, period or since/until, not {both}.")
    if args.get("until") and not args.get("since"):
        errors.add("since", "Give since together with until.")
    today = now.astimezone(tz).date()
    if args.get("since"):
        try:
            start = parse_moment(args["since"], tz)
        except ValueError:
            errors.add("since", "Use a date (YYYY-MM-DD), an ISO 8601 datetime or epoch seconds.")
            return now - timedelta(days=1), now, "custom", ("seconds", 86400)
        end = now
        if args.get("until"):
            try:
                end = parse_moment(args["until"], tz, end_of_day=True)
            except ValueError:
                errors.add(
                    "until", "Use a date (YYYY-MM-DD), an ISO 8601 datetime or epoch seconds."
                )
                return start, now, "custom", ("seconds", 86400)
        if end <= start:
            errors.add("until", "Must be after since.")
        dates = len(args["since"].strip()) == 10 and len(args.get("until", "").strip()) == 10
        if dates:
            days = (date.fromisoformat(args["until"].strip()) - start.astimezone(tz).date()).days
            return start, end, "custom", ("days", days + 1)
        return start, end, "custom", ("seconds", int((end - start).total_seconds()))
    if args.get("period"):
        raw = args["period"].strip().lower()
        name = PERIOD_ALIASES.get(raw, raw)
        if name not in PERIODS:
            errors.add("period", f"Use one of: {', '.join(PERIODS)}.")
            name = "24h"
    else:
        raw_hours = args.get("range", "24").strip()
        if not raw_hours.isdigit() or not 1 <= int(raw_hours) <= MAX_RANGE_HOURS:
            errors.add("range", f"Hours: an integer from 1 to {MAX_RANGE_HOURS}.")
            raw_hours = "24"
        hours = int(raw_hours)
        return now - timedelta(hours=hours), now, f"{hours}h", ("seconds", hours * 3600)
    if name == "today":
        return local_midnight(today, tz), now, name, ("days", 1)
    if name == "yesterday":
        day = today - timedelta(days=1)
        return local_midnight(day, tz), local_midnight(today, tz), name, ("days", 1)
    if name == "24h":
        return now - timedelta(hours=24), now, name, ("seconds", 86400)
    if name in ("7d", "30d", "90d"):
        days = int(name[:-1])
        return local_midnight(today - timedelta(days=days - 1), tz), now, name, ("days", days)
    if name == "month":
        return local_midnight(today.replace(day=1), tz), now, name, ("months", 1)
    if name == "12mo":
        index = today.year * 12 + today.month - 1 - 11
        first = date(index // 12, index % 12 + 1, 1)
        return local_midnight(first, tz), now, name, ("months", 12)
    earliest = first_seen() if first_seen is not None else None
    start = local_midnight((earliest or now).astimezone(tz).date(), tz)
    return start, now, name, ("seconds", int((now - start).total_seconds()))


def _labels(
    args: Mapping[str, str], default: tuple[str, ...] | None, errors: _Errors
) -> tuple[str, ...] | None:
    found = _first(args, CLASSIFICATION_PARAMS)
    if found is None:
        return default
    name, raw = found
    chosen: set[str] = set()
    for part in raw.lower().replace("|", ",").split(","):
        part = part.strip()
        if part in ("all", "any", "*"):
            return None
        if part not in LABEL_ALIASES:
            errors.add(name, "Use human, agent, bot or all (comma-separated for several).")
            return default
        chosen.add(LABEL_ALIASES[part])
    if chosen == set(LABELS):
        return None
    return tuple(label for label in LABELS if label in chosen)


def _filter_values(name: str, dim: Dimension, raw: str, errors: _Errors) -> tuple[str | None, ...]:
    values: list[str | None] = []
    for part in raw.split("|"):
        if len(part) > MAX_VALUE or any(ord(c) < 32 for c in part):
            errors.add(name, f"At most {MAX_VALUE} characters, no control characters.")
            return ()
        if part == NONE_VALUE:
            values.append(None)
        elif dim.name == "country":
            if len(part) != 2 or not part.isalpha():
                errors.add(name, "Use a two-letter country code such as US.")
                return ()
            values.append(part.upper())
        else:
            values.append(part)
    return tuple(dict.fromkeys(values))


def _filters(args: Mapping[str, str], errors: _Errors) -> tuple[Filter, ...]:
    found: dict[str, Filter] = {}
    for name, raw in args.items():
        key = FILTER_ALIASES.get(name)
        if key is None and name.startswith(("prop.", "props.", "property.")):
            key = name
        if key is None or raw == "":
            continue
        try:
            dim = dimension(key)
        except ValueError as exc:
            errors.add(name, str(exc))
            continue
        values = _filter_values(name, dim, raw, errors)
        if values:
            found[dim.name] = Filter(dim, values)
    return tuple(found[k] for k in sorted(found))


def _limit(args: Mapping[str, str], default: int, errors: _Errors) -> int:
    raw = args.get("limit")
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        errors.add("limit", f"An integer from 1 to {MAX_LIMIT}.")
        return default
    return int(raw)


def _interval(args: Mapping[str, str], errors: _Errors) -> str | None:
    found = _first(args, INTERVAL_PARAMS)
    if found is None:
        return None
    name, raw = found
    value = INTERVAL_ALIASES.get(raw.lower(), raw.lower())
    if value not in INTERVALS:
        errors.add(name, f"Use one of: {', '.join(INTERVALS)}.")
        return None
    return value


def parse_query(
    site: SiteLike,
    args: Mapping[str, str],
    *,
    now: datetime | None = None,
    first_seen: Callable[[], datetime | None] | None = None,
    classification: tuple[str, ...] | None = ("human",),
    limit: int = 10,
    compare: bool = False,
) -> Query:
    """A Query from request arguments; the keyword arguments are the endpoint's defaults.

    `compare` turns the previous period on unless the request says `compare=false`.
    """
    errors = _Errors()
    now = (now or datetime.now(UTC)).astimezone(UTC)
    try:
        tz = ZoneInfo(site.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    start, end, period, shift = _range(args, tz, now, first_seen, errors)
    compare_raw = (args.get("compare") or "").strip().lower()
    if compare_raw not in ("", "previous", "previous_period", "true", "1", "false", "0", "none"):
        errors.add("compare", "Use compare=previous.")
    interval = _interval(args, errors)
    if interval and not errors and bucket_count(start, end, interval) > MAX_BUCKETS:
        errors.add("interval", f"At most {MAX_BUCKETS} buckets: choose a longer interval.")
    query = Query(
        site_id=site.id,
        timezone=tz.key,
        start=start,
        end=max(end, start),
        now=now,
        filters=_filters(args, errors),
        labels=_labels(args, classification, errors),
        period=period,
        compare=compare_raw in ("previous", "previous_period", "true", "1")
        or (compare and compare_raw not in ("false", "0", "none")),
        interval=interval,
        limit=_limit(args, limit, errors),
        shift=shift,
    )
    if errors:
        raise ValidationFailed("Invalid query parameters.", errors=dict(errors))
    return query


def realtime_query(query: Query) -> Query:
    """The last five minutes (plus a minute of clock skew ahead) of the same question."""
    return query.window(query.now - REALTIME_WINDOW, query.now + timedelta(minutes=1))
