"""Every report equals the same numbers computed in plain Python over the same rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulse.analytics import breakdowns, reports
from pulse.analytics.dimensions import DIMENSIONS, dimension
from pulse.analytics.query import Query, parse_query
from tests import analytics_reference as ref

ZONES = ref.ZONES
NOW = datetime(2024, 11, 5, 15, 30, tzinfo=UTC)


@pytest.fixture
def world(app):
    """A team with two sites in two time zones, each with its own traffic."""
    return ref.two_zone_world("analytics", seed=7)


def q_for(world, zone: str, args: dict[str, str], **kw) -> tuple[Query, dict]:
    site = world["sites"][zone]
    return parse_query(site, args, now=kw.pop("now", NOW), **kw), world["data"][zone]


def strip(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("metrics", "previous_period")}


RANGES = [
    {"since": "2024-10-30", "until": "2024-11-05"},
    {"since": "2024-11-03", "until": "2024-11-03"},  # the 25-hour day in New York
    {"since": "2024-11-02T22:00:00", "until": "2024-11-03T03:00:00"},
    {"since": "2024-11-03T05:30:00Z", "until": "2024-11-03T07:45:00Z"},
    {"period": "yesterday"},
    {"period": "today"},
    {"period": "7d"},
    {"period": "all"},
    {"range": "168"},
    {"range": "1"},
]
CLASSES = [{}, {"classification": "agent"}, {"label": "bots"}, {"classification": "all"}]


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_overview_matches_reference(world, zone):
    for span in RANGES:
        for cls in CLASSES:
            q, data = q_for(world, zone, {**span, **cls}, first_seen=lambda: ref.START)
            assert strip(reports.overview(q)) == ref.ref_overview(q, data), (span, cls)


def test_the_sites_do_not_mix(world):
    args = {"since": "2024-10-01", "until": "2024-12-01", "classification": "all"}
    q, data = q_for(world, "new_york", args)
    events = [e for e in data["events"] if e["name"] != "session_end"]
    assert reports.overview(q)["total_events"] == len(events)


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_compare_previous_period(world, zone):
    for span in ({"period": "yesterday"}, {"since": "2024-11-02", "until": "2024-11-04"}):
        q, data = q_for(world, zone, {**span, "compare": "previous", "classification": "all"})
        result = reports.overview(q)
        before = q.previous()
        assert before.end == q.start  # calendar-aligned: the day(s) just before
        current, previous = ref.ref_overview(q, data), ref.ref_overview(before, data)
        for name in reports.OVERVIEW_METRICS:
            m = result["metrics"][name]
            assert (m["current"], m["previous"]) == (current[name], previous[name]), name
            expected_pct = (
                round(100 * (current[name] - previous[name]) / previous[name], 1)
                if previous[name]
                else None
            )
            assert m["change_pct"] == expected_pct


def test_compare_against_an_empty_period_has_null_change_pct(world):
    q, _ = q_for(world, "kathmandu", {"since": "2024-10-29", "until": "2024-10-29"})
    metrics = reports.overview(replace(q, compare=True))["metrics"]
    assert metrics["visitors"]["previous"] == 0
    assert metrics["visitors"]["change_pct"] is None
    assert metrics["visitors"]["change"] == metrics["visitors"]["current"]


@pytest.mark.parametrize("zone", sorted(ZONES))
@pytest.mark.parametrize(
    ("span", "interval"),
    [
        ({"since": "2024-11-02T20:00:00", "until": "2024-11-03T06:00:00"}, "hour"),
        ({"since": "2024-11-03", "until": "2024-11-03"}, "hour"),
        ({"since": "2024-10-29", "until": "2024-11-06"}, "day"),
        ({"since": "2024-10-27", "until": "2024-11-10"}, "week"),
        ({"since": "2024-09-15", "until": "2024-12-31"}, "month"),
        ({"range": "48"}, "hour"),
    ],
)
def test_timeseries_matches_reference(world, zone, span, interval):
    for cls in CLASSES[:2]:
        q, data = q_for(world, zone, {**span, **cls, "interval": interval})
        result = reports.timeseries(q)
        assert result["interval"] == interval
        assert result["points"] == ref.ref_timeseries(q, data, interval), cls


def test_the_fall_back_day_has_25_hours_in_new_york(world):
    q, _ = q_for(world, "new_york", {"since": "2024-11-03", "until": "2024-11-03"})
    points = reports.timeseries(q, "hour")["points"]
    assert len(points) == 25
    assert [p["date"] for p in points[1:3]] == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:00:00-05:00",
    ]


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_every_breakdown_matches_reference(world, zone):
    names = [*sorted(DIMENSIONS), "prop.plan", "prop.count", "prop.beta", "prop.lang"]
    for name in names:
        for args in ({"period": "7d"}, {"period": "7d", "classification": "agent,bot"}):
            q, data = q_for(world, zone, {**args, "limit": "4"})
            result = breakdowns.breakdown(q, name)
            expected = ref.ref_breakdown(q, data, dimension(name), 4)
            assert result["rows"] == expected, (name, args)


COMBINED = [
    {"source": "Google", "page": "/pricing"},
    {"channel": "organic-search|email", "country": "US"},
    {"source": "(none)", "browser": "(none)|Chrome"},
    {"event": "signup", "prop.plan": "pro"},
    {"prop.beta": "true", "device": "mobile"},
    {"prop.count": "2|3", "utm_campaign": "launch"},
    {"utm_term": "analytics", "referrer": "google.com"},
    {"entry_page": "/", "exit_page": "/docs"},
    {"hostname": "www.example.com", "agent": "ClaudeBot", "classification": "agent"},
    {"page": "/über", "utm_source": "newsletter", "utm_medium": "email"},
    {"utm_content": "banner", "os": "iOS"},
    {"page": "/nowhere"},
]


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_combined_filters(world, zone):
    matched = 0
    for filters in COMBINED:
        q, data = q_for(world, zone, {"since": "2024-10-29", "until": "2024-11-06", **filters})
        stats = reports.overview(q)
        assert strip(stats) == ref.ref_overview(q, data), filters
        matched += stats["sessions"] > 0 and stats["pageviews"] > 0
        for name in ("page", "source", "country", "entry_page", "prop.plan"):
            result = breakdowns.breakdown(q, name)["rows"]
            assert result == ref.ref_breakdown(q, data, dimension(name), 10), (filters, name)
        points = reports.timeseries(q, "day")["points"]
        assert points == ref.ref_timeseries(q, data, "day"), filters
    assert matched >= len(COMBINED) // 2  # the filters select something, mostly


def test_empty_range_is_zeros_with_every_bucket(world):
    q, _ = q_for(world, "kathmandu", {"since": "2023-01-01", "until": "2023-01-03"})
    stats = reports.overview(q)
    assert stats["visitors"] == stats["sessions"] == stats["pageviews"] == 0
    assert stats["bounce_rate"] == 0.0 and stats["detection_rate"] == 0.0
    points = reports.timeseries(q, "day")["points"]
    assert [p["date"] for p in points] == ["2023-01-01", "2023-01-02", "2023-01-03"]
    assert all(p["visitors"] == p["sessions"] == 0 for p in points)
    assert breakdowns.top_pages(q)["rows"] == []
    assert reports.engagement(q)["average_score"] is None


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_day_boundaries_follow_the_site_time_zone(world, zone):
    """Each local day's visitors equal a one-day query's; the days add up to the hits."""
    q, data = q_for(world, zone, {"since": "2024-10-30", "until": "2024-11-05", "label": "all"})
    points = reports.timeseries(q, "day")["points"]
    assert len(points) == ref.day_count(q) == 7
    for point in points:
        one, _ = q_for(
            world, zone, {"since": point["date"], "until": point["date"], "label": "all"}
        )
        single = reports.overview(one)
        assert (single["visitors"], single["sessions"]) == (point["visitors"], point["sessions"])
    hits = ref.ref_hits(q, data)
    assert sum(p["pageviews"] + p["events"] for p in points) == len(hits)


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_engagement_matches_reference(world, zone):
    for cls in CLASSES:
        q, data = q_for(world, zone, {"period": "all", **cls}, first_seen=lambda: ref.START)
        result = reports.engagement(q)
        expected = ref.ref_engagement(q, data)
        assert result["sessions"] == expected["sessions"]
        assert result["scored_sessions"] == expected["scored_sessions"]
        assert result["average_score"] == expected["average_score"]
        for bucket in result["buckets"]:
            sessions, split = expected["counts"][bucket["bucket"]]
            assert bucket["sessions"] == sessions, bucket
            assert {k: bucket[k] for k in split} == split


def test_daily_sessions_are_the_day_series(world):
    q, data = q_for(world, "new_york", {"since": "2024-10-30", "until": "2024-11-04"})
    days = reports.daily_sessions(q)["days"]
    expected = ref.ref_timeseries(q, data, "day")
    assert [(d["date"], d["sessions"], d["visitors"]) for d in days] == [
        (p["date"], p["sessions"], p["visitors"]) for p in expected
    ]


def test_realtime_counts_the_last_five_minutes(world):
    data = world["data"]["new_york"]
    now = max(e["ts"] for e in data["events"]) + timedelta(seconds=30)
    q, _ = q_for(world, "new_york", {"classification": "all"}, now=now)
    live = reports.realtime(q)
    window = q.window(now - timedelta(minutes=5), now + timedelta(minutes=1))
    hits = ref.ref_hits(window, data)
    assert live["visitors"] == len({e["visitor_id"] for e in hits}) > 0
    assert live["active_sessions"] == len({e["session_id"] for e in hits})
    assert live["pages"] == ref.ref_breakdown(window, data, dimension("page"), 10)


# Property-based: random questions, same answers ----------------------------------

VALUES = {
    "page": ref.PATHS + ["(none)"],
    "source": ["Google", "ChatGPT", "(none)", "Newsletter"],
    "channel": ["direct", "email", "organic-search"],
    "country": ["US", "DE", "NP", "(none)"],
    "device": ["desktop", "mobile", "tablet"],
    "event": ["pageview", "signup", "click"],
    "utm_campaign": ["launch", "fall", "(none)"],
    "prop.plan": ["free", "pro"],
    "prop.beta": ["true", "false"],
    "entry_page": ["/", "/docs"],
}
filters = st.lists(st.sampled_from(sorted(VALUES)), max_size=3, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries(
        {k: st.lists(st.sampled_from(VALUES[k]), min_size=1, max_size=2, unique=True) for k in keys}
    )
)
days = st.dates(min_value=ref.START.date(), max_value=ref.END.date())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    zone=st.sampled_from(sorted(ZONES)),
    first=days,
    length=st.integers(0, 4),
    picked=filters,
    cls=st.sampled_from(["human", "agent", "bot", "all", "human,bot"]),
    dim=st.sampled_from([*sorted(DIMENSIONS), "prop.plan", "prop.count"]),
    limit=st.integers(1, 6),
)
def test_random_queries_match_reference(world, zone, first, length, picked, cls, dim, limit):
    args = {k: "|".join(v) for k, v in picked.items()}
    last = first + timedelta(days=length)
    args.update(since=first.isoformat(), until=last.isoformat(), classification=cls)
    q, data = q_for(world, zone, args)
    assert strip(reports.overview(q)) == ref.ref_overview(q, data)
    assert breakdowns.breakdown(q, dim, limit)["rows"] == ref.ref_breakdown(
        q, data, dimension(dim), limit
    )
    assert reports.timeseries(q, "day")["points"] == ref.ref_timeseries(q, data, "day")
