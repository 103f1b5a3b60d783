"""Query parsing and calendar buckets: ranges in the site's zone, DST, 422s naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulse.analytics.buckets import bucket_starts, key_of, month_starts, offset_segments
from pulse.analytics.query import parse_query
from pulse.errors import ValidationFailed

NY = SimpleNamespace(id=1, timezone="America/New_York")
KTM = SimpleNamespace(id=2, timezone="Asia/Kathmandu")
NOW = datetime(2024, 11, 4, 12, 0, tzinfo=UTC)  # 07:00 in New York, the day after DST ends


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_default_is_the_last_24_hours_of_human_traffic():
    q = parse_query(NY, {}, now=NOW)
    assert (q.start, q.end) == (NOW - timedelta(hours=24), NOW)
    assert q.labels == ("human",) and q.filters == () and q.limit == 10


def test_range_is_hours_back_from_now():
    q = parse_query(NY, {"range": "168"}, now=NOW)
    assert q.start == NOW - timedelta(days=7)
    assert q.previous().end == q.start


def test_today_and_yesterday_are_local_days():
    today = parse_query(NY, {"period": "today"}, now=NOW)
    assert today.start == utc(2024, 11, 4, 5)  # midnight EST
    yesterday = parse_query(NY, {"period": "yesterday"}, now=NOW)
    assert (yesterday.start, yesterday.end) == (utc(2024, 11, 3, 4), utc(2024, 11, 4, 5))
    assert yesterday.end - yesterday.start == timedelta(hours=25)
    before = yesterday.previous()
    assert (before.start, before.end) == (utc(2024, 11, 2, 4), utc(2024, 11, 3, 4))


def test_kathmandu_days_start_at_18_15_utc():
    q = parse_query(KTM, {"period": "yesterday"}, now=NOW)
    assert (q.start, q.end) == (utc(2024, 11, 2, 18, 15), utc(2024, 11, 3, 18, 15))


def test_day_periods_count_today_and_compare_calendar_days():
    q = parse_query(NY, {"period": "7d", "compare": "previous"}, now=NOW)
    assert q.start == utc(2024, 10, 29, 4) and q.end == NOW and q.compare
    before = q.previous()
    assert before.start == utc(2024, 10, 22, 4)
    assert before.end == utc(2024, 10, 28, 11)  # 07:00 local, a week earlier (EDT)


def test_twelve_months_and_month():
    q = parse_query(NY, {"period": "12mo"}, now=NOW)
    assert q.start == utc(2023, 12, 1, 5)
    assert parse_query(NY, {"period": "month"}, now=NOW).start == utc(2024, 11, 1, 4)
    assert q.previous().start == utc(2022, 12, 1, 5)


def test_all_starts_on_the_day_of_the_first_event():
    q = parse_query(NY, {"period": "all"}, now=NOW, first_seen=lambda: utc(2024, 1, 10, 3))
    assert q.start == utc(2024, 1, 9, 5)


def test_since_until_dates_include_the_until_day():
    q = parse_query(NY, {"since": "2024-11-01", "until": "2024-11-03"}, now=NOW)
    assert (q.start, q.end) == (utc(2024, 11, 1, 4), utc(2024, 11, 4, 5))
    assert q.previous().end == q.start
    assert q.previous().start == utc(2024, 10, 29, 4)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-11-03T01:30:00", utc(2024, 11, 3, 5, 30)),  # naive: site time (first 01:30)
        ("2024-11-03T01:30:00Z", utc(2024, 11, 3, 1, 30)),
        ("2024-11-03T01:30:00+01:00", utc(2024, 11, 3, 0, 30)),
        ("1730597400", utc(2024, 11, 3, 1, 30)),
        ("1730597400000", utc(2024, 11, 3, 1, 30)),
    ],
)
def test_since_accepts_datetimes_and_epochs(raw, expected):
    assert parse_query(NY, {"since": raw}, now=NOW).start == expected


def test_filters_classification_and_aliases():
    q = parse_query(
        NY,
        {
            "path": "/a|/b",
            "country": "de",
            "referrer_host": "(none)",
            "prop.plan": "pro",
            "label": "agents,bots",
            "groupBy": "daily",
            "limit": "50",
            "site": "ignored",
        },
        now=NOW,
    )
    found = {f.dimension.name: f.values for f in q.filters}
    assert found == {
        "page": ("/a", "/b"),
        "country": ("DE",),
        "referrer": (None,),
        "prop.plan": ("pro",),
    }
    assert q.labels == ("agent", "bot") and q.interval == "day" and q.limit == 50
    assert parse_query(NY, {"classification": "all"}, now=NOW).labels is None
    assert parse_query(NY, {"classification": "human,agent,bot"}, now=NOW).labels is None


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"range": "abc"}, "range"),
        ({"range": "0"}, "range"),
        ({"period": "fortnight"}, "period"),
        ({"since": "yesterday-ish"}, "since"),
        ({"since": "2024-11-05", "until": "2024-11-01"}, "until"),
        ({"until": "2024-11-01"}, "since"),
        ({"range": "24", "period": "7d"}, "period"),
        ({"country": "USA"}, "country"),
        ({"classification": "robots"}, "classification"),
        ({"label": "martians"}, "label"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"interval": "minute"}, "interval"),
        ({"period": "all", "interval": "hour"}, "interval"),
        ({"compare": "yes please"}, "compare"),
        ({'prop.a"b': "x"}, 'prop.a"b'),
        ({"page": "x" * 2000}, "page"),
    ],
)
def test_bad_values_are_422_naming_the_field(args, field):
    with pytest.raises(ValidationFailed) as caught:
        parse_query(NY, args, now=NOW, first_seen=lambda: utc(2015, 1, 1))
    assert caught.value.status == 422
    assert field in caught.value.errors


def test_offset_segments_find_the_dst_changes():
    tz = ZoneInfo("America/New_York")
    segments = offset_segments(tz, utc(2024, 3, 1), utc(2024, 12, 1))
    assert segments == [
        (utc(2024, 3, 10, 7), -5 * 3600),
        (utc(2024, 11, 3, 6), -4 * 3600),
        (utc(2024, 12, 1), -5 * 3600),
    ]
    assert offset_segments(ZoneInfo("Asia/Kathmandu"), utc(2024, 1, 1), utc(2025, 1, 1)) == [
        (utc(2025, 1, 1), 5 * 3600 + 45 * 60)
    ]


def test_spring_forward_day_has_23_hours():
    tz = ZoneInfo("America/New_York")
    buckets = bucket_starts(tz, utc(2024, 3, 10, 5), utc(2024, 3, 11, 4), "hour")
    assert len(buckets) == 23
    assert "2024-03-10T02:00:00-05:00" not in [b.label for b in buckets]


zones = st.sampled_from(["America/New_York", "Asia/Kathmandu", "Pacific/Kiritimati", "UTC"])
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
)


@given(zone=zones, instant=instants, interval=st.sampled_from(["hour", "day", "week", "month"]))
def test_every_instant_falls_in_the_bucket_with_its_local_label(zone, instant, interval):
    """key_of (the SQL arithmetic's twin) agrees with the labelled buckets of the range."""
    tz = ZoneInfo(zone)
    start, end = instant - timedelta(days=40), instant + timedelta(days=40)
    buckets = bucket_starts(tz, start, end, interval)
    months = month_starts(tz, start, end)
    key = key_of(instant, tz, interval, months)
    mine = [b for b in buckets if b.key == key]
    assert len(mine) == 1
    local = instant.astimezone(tz)
    label = {
        "hour": local.replace(minute=0, second=0, microsecond=0).isoformat(),
        "day": local.date().isoformat(),
        "week": (local.date() - timedelta(days=local.weekday())).isoformat(),
        "month": local.date().replace(day=1).isoformat(),
    }[interval]
    assert mine[0].label == label
    assert mine[0].start <= instant
