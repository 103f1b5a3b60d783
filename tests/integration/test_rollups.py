"""Daily roll-ups give the reports the same numbers as the raw tables, and stay fresh."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import product
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, update

from pulse.analytics import breakdowns, reports, rollups
from pulse.analytics.dimensions import DIMENSIONS, EVENTS, dimension
from pulse.extensions import db
from pulse.ingest import sessions, store
from pulse.models import RollupDay, RollupHit
from pulse.models.rollup import HEAD, ROLLUP_LAYOUT, TAIL, WHOLE
from tests import analytics_reference as ref
from tests.integration.test_analytics import CLASSES, NOW, RANGES, q_for, strip, world  # noqa: F401

BUILT_THROUGH = date(2024, 11, 4)  # NOW is 2024-11-05 15:30 UTC: earlier days are closed


@pytest.fixture
def rolled(world, monkeypatch):  # noqa: F811
    """The analytics world with every closed day rolled up, and a count of roll-up reads."""
    assert rollups.mark_existing() > 0
    assert rollups.refresh_due(now=NOW) > 0
    reads = {"hits": 0, "visits": 0}
    hit_counts, visit_counts = rollups.hit_counts, rollups.visit_counts

    def counting_hits(*args, **kwargs):
        reads["hits"] += 1
        return hit_counts(*args, **kwargs)

    def counting_visits(*args, **kwargs):
        reads["visits"] += 1
        return visit_counts(*args, **kwargs)

    monkeypatch.setattr(rollups, "hit_counts", counting_hits)
    monkeypatch.setattr(rollups, "visit_counts", counting_visits)
    world["reads"] = reads
    return world


def test_every_closed_day_with_events_is_built(rolled):
    site = rolled["sites"]["new_york"]
    days = rollups.days_of(site.id, date(2024, 1, 1), date(2025, 1, 1))
    event_days = {e["ts"].astimezone(UTC).date() for e in rolled["data"]["new_york"]["events"]}
    assert days == sorted(d for d in event_days if d <= BUILT_THROUGH)
    assert db.session.query(RollupHit).filter_by(site_id=site.id, dim="").count() > 0


@pytest.mark.parametrize("zone", ["new_york", "kathmandu"])
def test_overview_from_rollups_matches_reference(rolled, zone):
    for span in RANGES:
        for cls in CLASSES:
            q, data = q_for(rolled, zone, {**span, **cls}, first_seen=lambda: ref.START)
            assert strip(reports.overview(q)) == ref.ref_overview(q, data), (span, cls)
    assert rolled["reads"]["hits"] > 0 and rolled["reads"]["visits"] > 0


@pytest.mark.parametrize("zone", ["new_york", "kathmandu"])
def test_breakdowns_from_rollups_match_reference(rolled, zone):
    for name in sorted(DIMENSIONS):
        for args in (
            {"period": "7d"},
            {"period": "7d", "classification": "agent,bot"},
            {"since": "2024-10-29", "until": "2024-11-06", "classification": "all"},
        ):
            q, data = q_for(rolled, zone, {**args, "limit": "4"})
            result = breakdowns.breakdown(q, name)
            assert result["rows"] == ref.ref_breakdown(q, data, dimension(name), 4), (name, args)
    assert rolled["reads"]["hits"] > 0 and rolled["reads"]["visits"] > 0


SINGLE_FILTERS = [
    {"country": "US"},
    {"page": "/pricing"},
    {"source": "Google"},
    {"channel": "email"},
    {"browser": "(none)"},
    {"device": "mobile", "classification": "all"},
    {"agent": "ClaudeBot", "classification": "agent"},
    {"entry_page": "/"},
    {"country": "US|DE"},  # two values: raw, a visitor of both counts once
    {"utm_campaign": "launch"},
]


def test_single_filters_and_breakdown_on_the_filtered_dimension(rolled):
    for filters in SINGLE_FILTERS:
        q, data = q_for(
            rolled, "new_york", {"since": "2024-10-29", "until": "2024-11-06", **filters}
        )
        assert strip(reports.overview(q)) == ref.ref_overview(q, data), filters
        name = next(k for k in filters if k != "classification")
        rows = breakdowns.breakdown(q, name)["rows"]
        assert rows == ref.ref_breakdown(q, data, dimension(name), 10), filters


CLIENT_FILTERS = [
    {"country": "US", "device": "mobile"},
    {"country": "US|DE"},
    {"country": "US|(none)", "browser": "Chrome|Safari", "classification": "all"},
    {"os": "iOS", "device": "mobile", "classification": "agent,bot"},
    {"agent": "ClaudeBot|GPTBot", "country": "DE", "classification": "agent"},
    {"browser": "(none)", "os": "Windows|macOS"},
]


@pytest.fixture
def steady_world(app):
    """A New York site whose people keep one client all day (as real visitor ids do),
    and on one day a person who changes country, as if their IP address moved."""
    from tests.factories import make_tenant

    tenant = make_tenant("steady")
    tenant.site.timezone = ref.ZONES["new_york"]
    db.session.commit()
    data = ref.generate(tenant.site.id, tenant.site.timezone, seed=5, steady=True)
    moved = next(
        e
        for e in data["events"]
        if e["ts"].date() == date(2024, 11, 1) and e["event_uid"].endswith("-1")
    )
    moved["country"] = "FR"
    db.session.execute(
        update(EVENTS).where(EVENTS.c.event_uid == moved["event_uid"]).values(country="FR")
    )
    rollups.mark_existing()
    assert rollups.refresh_due(now=NOW) > 0
    return {"sites": {"new_york": tenant.site}, "data": {"new_york": data}}


def test_filters_on_client_dimensions_read_the_client_rows(steady_world, rolled):
    """Several filters on country, browser, OS, device or agent: the `@client` rows
    answer the days where each visitor has one combination; the rest is read raw."""
    seen = {"partitioned": 0, "not": 0}
    for traffic, filters in product([steady_world, rolled], CLIENT_FILTERS):
        for span in ({"since": "2024-10-29", "until": "2024-11-06"}, {"period": "7d"}):
            q, data = q_for(traffic, "new_york", {**span, **filters})
            assert rollups.by_client(q, None), filters
            pieces = rollups.pieces(q)
            days = len(pieces)
            kept = len(rollups.partitioned(RollupHit, q, pieces))
            seen["partitioned"] += kept
            seen["not"] += days - kept
            assert strip(reports.overview(q)) == ref.ref_overview(q, data), (span, filters)
    # In the steady world all days but the traveller's are partitioned; in the other,
    # people change country and browser between visits: both ways were taken.
    assert seen["partitioned"] > 0 and seen["not"] > 0, seen


def test_client_rows_answer_utc_day_series_under_filters(utc_site, monkeypatch):
    query, data = utc_site
    reads = []
    monkeypatch.setattr(rollups, "_read_client", _counting(rollups._read_client, reads))
    for filters in ({"country": "US", "device": "desktop"}, {"browser": "Chrome|Firefox"}):
        q = query({"since": "2024-10-29", "until": "2024-11-06", "interval": "day", **filters})
        assert reports.timeseries(q)["points"] == ref.ref_timeseries(q, data, "day"), filters
        assert strip(reports.overview(q)) == ref.ref_overview(q, data), filters
    assert reads


def test_days_of_an_older_layout_are_rebuilt_and_answer_meanwhile(rolled):
    site = rolled["sites"]["new_york"]
    day = date(2024, 11, 1)
    where = (RollupHit.site_id == site.id, RollupHit.day == day, RollupHit.dim == rollups.CLIENT)
    old = db.session.get(RollupDay, (site.id, day))
    old.layout = 1
    db.session.execute(delete(RollupHit).where(*where))
    db.session.commit()
    q, data = q_for(rolled, "new_york", {"since": "2024-10-29", "until": "2024-11-06"})
    assert day in rollups.days_of(site.id, day, day + timedelta(days=1))  # still fresh
    reads_before = rolled["reads"]["hits"]
    assert strip(reports.overview(q)) == ref.ref_overview(q, data)
    assert rolled["reads"]["hits"] > reads_before
    assert rollups.refresh_due(now=NOW) == 1
    assert db.session.get(RollupDay, (site.id, day)).layout == ROLLUP_LAYOUT
    assert db.session.query(RollupHit).filter(*where).count() > 0


def _counting(function, calls: list):
    def counted(*args, **kwargs):
        calls.append(args)
        return function(*args, **kwargs)

    return counted


def _event(site_id: int, ts: datetime, uid: str, visitor_id: int = 42) -> dict:
    return {
        "site_id": site_id,
        "event_uid": uid,
        "ts": ts,
        "name": "pageview",
        "session_id": "",
        "visitor_id": visitor_id,
        "user_id": None,
        "hostname": "www.example.com",
        "pathname": "/late",
        "referrer": None,
        "referrer_host": None,
        "source": None,
        "channel": "direct",
        "utm_source": None,
        "utm_medium": None,
        "utm_campaign": None,
        "utm_term": None,
        "utm_content": None,
        "country": "FR",
        "browser": "Firefox",
        "browser_version": "130",
        "os": "Linux",
        "device": "desktop",
        "label": "human",
        "agent_name": None,
        "agent_category": None,
        "confidence": 0.9,
        "user_agent": None,
        "props": {},
        "engaged_ms": None,
        "scroll_depth": None,
        "behaviour": None,
    }


def _version(site_id: int, day: date) -> tuple[int, int | None]:
    row = db.session.get(RollupDay, (site_id, day))
    return row.version, row.built_version


def test_a_late_event_makes_its_day_stale_until_rebuilt(rolled):
    site = rolled["sites"]["new_york"]
    day = date(2024, 11, 1)
    args = {"since": "2024-10-30", "until": "2024-11-04", "classification": "all"}
    before = reports.overview(q_for(rolled, "new_york", args)[0])
    store.write([_event(site.id, datetime(2024, 11, 1, 12, tzinfo=UTC), "late-1")])
    db.session.commit()
    version, built = _version(site.id, day)
    assert version > built  # stale: the day is read raw
    q, _ = q_for(rolled, "new_york", args)
    pieces = rollups.pieces(q)
    assert pieces and not any(piece.day == day for piece in pieces)
    after = reports.overview(q)
    assert after["pageviews"] == before["pageviews"] + 1
    assert after["visitors"] == before["visitors"] + 1
    rollups.refresh_due(now=NOW)
    version, built = _version(site.id, day)
    assert version == built
    assert reports.overview(q_for(rolled, "new_york", args)[0]) == after


def test_a_hit_continuing_yesterdays_visit_marks_the_visits_day(rolled):
    site = rolled["sites"]["kathmandu"]
    start = datetime(2024, 11, 2, 23, 50, tzinfo=UTC)
    store.write([_event(site.id, start, "span-1", visitor_id=7)])
    db.session.commit()
    rollups.refresh_due(now=NOW)
    assert _version(site.id, date(2024, 11, 2))[0] == _version(site.id, date(2024, 11, 2))[1]
    # Ten minutes later, past midnight: the visit begun on the 2nd gets a second pageview.
    store.write([_event(site.id, start + timedelta(minutes=10), "span-2", visitor_id=7)])
    db.session.commit()
    version, built = _version(site.id, date(2024, 11, 2))
    assert version > built


def test_today_is_rolled_up_to_a_cut_then_whole_once_settled(rolled):
    site = rolled["sites"]["new_york"]
    today = NOW.date()
    rollups.refresh_due(now=NOW)
    row = db.session.get(RollupDay, (site.id, today))
    assert row.built_version == row.version and row.cut == NOW - rollups.LATE
    assert rollups.days_of(site.id, today, today + timedelta(days=1)) == []  # not whole
    # Ten minutes after midnight the day is still settling: its cut is its end.
    midnight = datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC)
    rollups.refresh_due(now=midnight + timedelta(minutes=5))
    db.session.refresh(row)
    assert row.cut == midnight
    rollups.refresh_due(now=midnight + timedelta(minutes=15))
    db.session.refresh(row)
    assert row.cut is None and row.built_version == row.version
    assert rollups.days_of(site.id, today, today + timedelta(days=1)) == [today]


def test_only_a_late_write_to_today_makes_its_cut_stale(rolled):
    site = rolled["sites"]["new_york"]
    rollups.refresh_due(now=NOW)
    version = _version(site.id, NOW.date())[0]
    rollups.note_written([{"site_id": site.id, "ts": NOW - timedelta(seconds=30)}], now=NOW)
    assert _version(site.id, NOW.date())[0] == version
    late = NOW - rollups.LATE - timedelta(seconds=1)
    rollups.note_written([{"site_id": site.id, "ts": late}], now=NOW)
    assert _version(site.id, NOW.date())[0] == version + 1
    # A hit continuing a visit begun earlier today changes no roll-up of today's...
    rollups.note_written([{"site_id": site.id, "ts": NOW, "visit_starts": (late, late)}], now=NOW)
    assert _version(site.id, NOW.date())[0] == version + 1
    recent = NOW - rollups.LATE - sessions.TIMEOUT
    continued = {"site_id": site.id, "ts": NOW, "visit_starts": (late, late), "visit_seen": recent}
    rollups.note_written([continued], now=NOW)
    assert _version(site.id, NOW.date())[0] == version + 1
    # ... unless that visit was idle long enough to be in the roll-up (a session id
    # continues it): the roll-up holds it as it was.
    idle = {**continued, "visit_seen": recent - timedelta(seconds=1)}
    rollups.note_written([idle], now=NOW)
    assert _version(site.id, NOW.date())[0] == version + 2


def test_a_visit_continued_by_its_session_id_after_the_timeout_makes_today_stale(
    rolled, monkeypatch
):
    """store.write -> sessions.assign -> note_written: a visit the roll-up holds as it
    was changes, so today is read raw until the next cut."""
    monkeypatch.setattr(rollups, "utcnow", lambda: NOW)  # the clock of note_written
    site = rolled["sites"]["kathmandu"]

    def hit(minutes_ago: int, uid: str, session_id: str) -> dict:
        at = NOW - timedelta(minutes=minutes_ago)
        return {**_event(site.id, at, uid, visitor_id=99), "session_id": session_id}

    store.write([hit(50, "kept-1", "kept"), hit(10, "fresh-1", "fresh")])
    db.session.commit()
    rollups.refresh_due(now=NOW)
    db.session.commit()
    midnight = datetime.combine(NOW.date(), datetime.min.time(), UTC)
    today = q_for(rolled, "kathmandu", {})[0].window(midnight, NOW)
    assert rollups.open_settled(today) is not None
    version = _version(site.id, NOW.date())[0]
    # A visit last seen 10 minutes ago is not in the roll-up: continuing it is no change.
    store.write([hit(0, "fresh-2", "fresh")])
    db.session.commit()
    assert _version(site.id, NOW.date())[0] == version
    # One last seen 50 minutes ago may be: its session id continues it, not a new visit.
    store.write([hit(0, "kept-2", "kept")])
    db.session.commit()
    assert _version(site.id, NOW.date())[0] == version + 1
    assert rollups.open_settled(today) is None


def _returning_visitors(data: dict, settled: datetime) -> int:
    """Visitors of NOW's day with a visit over before `settled` and a hit since."""
    midnight = datetime.combine(NOW.date(), datetime.min.time(), UTC)
    over = {v["visitor_id"] for v in data["visits"] if midnight <= v["last_seen_at"] < settled}
    since = {e["visitor_id"] for e in data["events"] if settled <= e["ts"] < NOW}
    return len(over & since)


def _tail_visitors(data: dict, cut: datetime) -> int:
    """Visitors of NOW's day with hits both before `cut` and in [cut, NOW)."""
    midnight = datetime.combine(NOW.date(), datetime.min.time(), UTC)
    before, after = set(), set()
    for e in data["events"]:
        if e["name"] != "session_end" and midnight <= e["ts"] < NOW:
            (before if e["ts"] < cut else after).add(e["visitor_id"])
    return len(before & after)


@pytest.mark.parametrize("hours", [10, 6])
def test_todays_rollup_with_the_visitors_since_its_cut_matches_reference(rolled, hours):
    """Today's hits before the cut, and visits over a visit timeout before it, come
    from the roll-up; the visitors seen since then (some also before it, some with
    other labels) are swapped in from raw rows."""
    cut = NOW - timedelta(hours=hours)
    for site in rolled["sites"].values():
        rollups.build_day(site.id, NOW.date(), cut=cut)
    db.session.commit()
    settled = cut - sessions.TIMEOUT
    assert sum(_tail_visitors(data, cut) for data in rolled["data"].values()) > 0
    assert sum(_returning_visitors(data, settled) for data in rolled["data"].values()) > 0
    reads = rolled["reads"]["hits"]
    visit_reads = rolled["reads"]["visits"]
    for zone in ("new_york", "kathmandu"):
        for span in ({"period": "today"}, {"period": "7d"}, {"since": "2024-11-05"}):
            for cls in CLASSES:
                q, data = q_for(rolled, zone, {**span, **cls}, first_seen=lambda: ref.START)
                assert strip(reports.overview(q)) == ref.ref_overview(q, data), (zone, span)
        for name in sorted(DIMENSIONS):
            q, data = q_for(rolled, zone, {"period": "7d", "classification": "all", "limit": "5"})
            rows = breakdowns.breakdown(q, name)["rows"]
            assert rows == ref.ref_breakdown(q, data, dimension(name), 5), (zone, name)
        for filters in SINGLE_FILTERS:
            q, data = q_for(rolled, zone, {"period": "7d", **filters})
            assert strip(reports.overview(q)) == ref.ref_overview(q, data), (zone, filters)
        for cls in CLASSES:
            q, data = q_for(rolled, zone, {"period": "7d", "interval": "day", **cls})
            points = reports.timeseries(q)["points"]
            assert points == ref.ref_timeseries(q, data, "day"), (zone, cls)
    assert rolled["reads"]["hits"] > reads
    assert rolled["reads"]["visits"] > visit_reads
    midnight = datetime.combine(NOW.date(), datetime.min.time(), UTC)
    q, _ = q_for(rolled, "kathmandu", {"period": "today"})
    assert rollups.open_settled(q.window(midnight, NOW)) == (cut, settled)
    # New York's midnight (05:00 UTC) is before both cuts: today's roll-up has its
    # HEAD and TAIL, and the day series reads them in its two local days.
    # Kathmandu's (18:15 UTC) is after NOW: that series reads the day raw.
    for zone, halves in (("new_york", True), ("kathmandu", False)):
        q, _ = q_for(rolled, zone, {"period": "today"})
        today = q.window(midnight, NOW)
        assert (rollups.open_halves(today, cut) is not None) is halves, zone


def test_a_cut_after_the_range_end_is_not_used(rolled):
    site = rolled["sites"]["kathmandu"]
    rollups.build_day(site.id, NOW.date(), cut=NOW - timedelta(hours=1))
    db.session.commit()
    args = {"since": "2024-11-05T00:00:00Z", "until": "2024-11-05T12:00:00Z"}
    q, data = q_for(rolled, "kathmandu", args)
    assert rollups.open_cut(q) is None
    assert strip(reports.overview(q)) == ref.ref_overview(q, data)


def test_cli_builds_days_stored_before_rollups(world):  # noqa: F811
    site = world["sites"]["new_york"]
    assert rollups.days_of(site.id, date(2024, 1, 1), date(2025, 1, 1)) == []
    result = world_app_cli(["rollups", "refresh", "--all"])
    assert result.exit_code == 0, result.output
    built = int(result.output.split()[0])
    days = rollups.days_of(site.id, date(2024, 1, 1), date(2025, 1, 1))
    assert built >= len(days) > 0


def world_app_cli(args: list[str]):
    from flask import current_app

    return current_app.test_cli_runner().invoke(args=args)


@pytest.fixture
def utc_site(app):
    """A UTC site: its days are roll-up days, so time series of days read roll-ups too."""
    from pulse.analytics.query import parse_query
    from tests.factories import make_tenant

    tenant = make_tenant("utc")
    tenant.site.timezone = "UTC"
    db.session.commit()
    data = ref.generate(tenant.site.id, "UTC", seed=11)
    rollups.mark_existing()
    assert rollups.refresh_due(now=NOW) > 0

    def query(args):
        return parse_query(tenant.site, args, now=NOW)

    return query, data


@pytest.mark.parametrize(
    ("span", "interval"),
    [
        ({"since": "2024-10-29", "until": "2024-11-06"}, "day"),
        ({"since": "2024-10-27", "until": "2024-11-10"}, "week"),
        ({"since": "2024-09-15", "until": "2024-12-31"}, "month"),
        ({"since": "2024-10-30T06:00:00", "until": "2024-11-03T18:00:00"}, "day"),
        ({"since": "2024-11-01", "until": "2024-11-02"}, "hour"),
    ],
)
def test_utc_time_series_from_rollups_match_reference(utc_site, monkeypatch, span, interval):
    query, data = utc_site
    reads = []
    monkeypatch.setattr(
        rollups,
        "by_piece_bucket",
        lambda *a, _f=rollups.by_piece_bucket: reads.append(1) or _f(*a),
    )
    for cls in CLASSES:
        q = query({**span, **cls, "interval": interval})
        assert reports.timeseries(q)["points"] == ref.ref_timeseries(q, data, interval), cls
        assert strip(reports.overview(q)) == ref.ref_overview(q, data), cls
    assert bool(reads) == (interval != "hour")


LOCAL_SERIES = [
    ({"since": "2024-10-29", "until": "2024-11-04"}, "day"),  # New York's 25-hour day
    ({"since": "2024-10-27", "until": "2024-11-04"}, "week"),
    ({"since": "2024-09-15", "until": "2024-11-04"}, "month"),
    ({"since": "2024-10-30T06:00:00", "until": "2024-11-03T18:00:00"}, "day"),
    ({"range": "168"}, "day"),
]


@pytest.mark.parametrize("zone", ["new_york", "kathmandu"])
def test_local_days_are_sums_of_the_parts_of_utc_days(rolled, zone, monkeypatch):
    """A site outside UTC: a local day is the tail of one UTC day and the head of the
    next; series, totals and breakdowns read those parts and match the reference."""
    bucketed = []
    monkeypatch.setattr(
        rollups,
        "by_piece_bucket",
        lambda rows, q, interval, found, _f=rollups.by_piece_bucket: (
            bucketed.append({p.part for p in found}) or _f(rows, q, interval, found)
        ),
    )
    for span, interval in LOCAL_SERIES:
        for cls in CLASSES:
            q, data = q_for(rolled, zone, {**span, **cls, "interval": interval})
            points = reports.timeseries(q)["points"]
            assert points == ref.ref_timeseries(q, data, interval), (span, cls)
            assert strip(reports.overview(q)) == ref.ref_overview(q, data), (span, cls)
            rows = breakdowns.breakdown(q, "page")["rows"]
            assert rows == ref.ref_breakdown(q, data, dimension("page"), 10), (span, cls)
    # Day series read both parts; whole days answer weeks and months where they can.
    assert {HEAD, TAIL} <= set().union(*bucketed)
    assert WHOLE in set().union(*bucketed)
    q, _ = q_for(rolled, zone, {"since": "2024-10-30", "until": "2024-11-03"})
    parts = [p.part for p in rollups.pieces(q)]
    # The range's first and last UTC days are read as the part inside it.
    assert parts[0] in (HEAD, TAIL) and parts[-1] in (HEAD, TAIL), parts
    assert set(parts[1:-1]) == {WHOLE}, parts


def test_split_of_is_the_local_midnight_inside_the_utc_day():
    new_york, london = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
    assert rollups.split_of(date(2024, 7, 1), new_york) == datetime(2024, 7, 1, 4, tzinfo=UTC)
    assert rollups.split_of(date(2024, 12, 1), new_york) == datetime(2024, 12, 1, 5, tzinfo=UTC)
    kathmandu = ZoneInfo("Asia/Kathmandu")
    assert rollups.split_of(date(2024, 12, 1), kathmandu) == datetime(
        2024, 12, 1, 18, 15, tzinfo=UTC
    )
    assert rollups.split_of(date(2024, 7, 1), london) == datetime(2024, 7, 1, 23, tzinfo=UTC)
    assert rollups.split_of(date(2024, 12, 1), london) is None  # its days are UTC days
    assert rollups.split_of(date(2024, 12, 1), ZoneInfo("UTC")) is None


def test_a_zone_change_reads_whole_days_until_the_parts_are_rebuilt(rolled):
    site = rolled["sites"]["new_york"]
    site.timezone = ref.ZONES["kathmandu"]
    rollups.zone_changed(site.id)
    db.session.commit()
    args = {"since": "2024-10-29", "until": "2024-11-04", "interval": "day"}
    q, data = q_for(rolled, "new_york", args)
    assert {p.part for p in rollups.pieces(q, "day")} <= {WHOLE}  # New York's parts: unused
    assert reports.timeseries(q)["points"] == ref.ref_timeseries(q, data, "day")
    assert strip(reports.overview(q)) == ref.ref_overview(q, data)
    assert rollups.refresh_due(now=NOW) > 0  # rebuilt at Kathmandu's midnight
    q, data = q_for(rolled, "new_york", args)
    assert {HEAD, TAIL} <= {p.part for p in rollups.pieces(q, "day")}
    assert reports.timeseries(q)["points"] == ref.ref_timeseries(q, data, "day")
    assert strip(reports.overview(q)) == ref.ref_overview(q, data)


@pytest.mark.parametrize(
    "args",
    [
        {"period": "week", "periods": "8"},
        {"period": "day", "periods": "14"},
        {"period": "day", "since": "2024-10-25", "until": "2024-11-06", "classification": "all"},
        {"period": "week", "periods": "6", "country": "DE"},  # a filter: raw
    ],
)
@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kathmandu"])
def test_retention_from_rollups_matches_the_reference(app, monkeypatch, args, zone):
    """UTC days of users from the roll-ups; outside UTC, each user-day's first and last
    hit place it in the site's local days."""
    from pulse.analytics import retention as module
    from pulse.analytics.retention import parse_retention, retention
    from tests import funnel_reference as fref
    from tests.factories import make_tenant

    tenant = make_tenant("retained")
    tenant.site.timezone = zone
    db.session.commit()
    data = fref.generate(tenant.site.id, zone, seed=11)
    rollups.mark_existing()
    assert rollups.refresh_due(now=fref.NOW) > 0
    reads = []
    monkeypatch.setattr(
        rollups, "user_periods", lambda *a, _f=rollups.user_periods: reads.append(1) or _f(*a)
    )
    monkeypatch.setattr(module, "_spans", lambda *a, _f=module._spans: reads.append(1) or _f(*a))
    q, grain = parse_retention(tenant.site, args, now=fref.NOW)
    report, expected = retention(q, grain), fref.ref_retention(q, grain, data)
    assert report["users"] == expected["users"] > 0
    assert report["average_rates"] == expected["average_rates"]
    assert report["unidentified_events"] == expected["unidentified_events"]
    got = [{k: c[k] for k in ("cohort", "size", "returning", "rates")} for c in report["cohorts"]]
    assert got == expected["cohorts"]
    assert bool(reads) == ("country" not in args)
