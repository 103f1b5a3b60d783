"""Explorers (events, sessions, one session, properties, heatmap) against a plain-Python twin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pulse.analytics import explore, rollups
from pulse.analytics.heatmap import heatmap
from pulse.analytics.query import parse_query
from pulse.extensions import db
from tests import analytics_reference as ref
from tests import explore_reference as xref
from tests.factories import bearer, make_key, make_tenant

ZONES = ref.ZONES
NOW = datetime(2024, 11, 5, 15, 30, tzinfo=UTC)
RANGES = [
    {"since": "2024-10-29", "until": "2024-11-06"},
    {"since": "2024-11-03", "until": "2024-11-03"},  # 25 hours in New York
    {"since": "2024-11-03T05:30:00Z", "until": "2024-11-03T07:45:00Z"},
    {"period": "7d"},
    {"range": "30"},
]
CLASSES = [{}, {"classification": "agent"}, {"classification": "bot,agent"}, {"label": "all"}]
COMBINED = [
    {"source": "Google", "page": "/pricing"},
    {"channel": "organic-search|email", "country": "US"},
    {"source": "(none)", "browser": "(none)|Chrome"},
    {"event": "signup", "prop.plan": "pro"},
    {"prop.beta": "true", "device": "mobile", "classification": "all"},
    {"entry_page": "/", "exit_page": "/docs"},
    {"page": "/nowhere"},
]
PRIVATE = {"visitor_id", "user_id", "user_agent", "ip", "referrer_url"}


@pytest.fixture
def world(app):
    world = ref.two_zone_world("explore", seed=11)
    rollups.mark_existing()  # stored without the ingest path: no day is rolled up yet
    db.session.commit()
    return world


@pytest.fixture
def bare(app):
    """A tenant without traffic, for input checks."""
    return make_tenant("bare")


def q_for(world, zone, args, **kw):
    return parse_query(world["sites"][zone], args, now=NOW, **kw), world["data"][zone]


def _checked_event(got: dict, row: dict, tz) -> None:
    assert got["id"] == row["event_uid"]
    assert got["event"] == row["name"] and got["page"] == row["pathname"]
    assert got["timestamp"] == xref.z(row["ts"])
    assert got["local_time"] == row["ts"].astimezone(tz).isoformat()
    assert got["properties"] == row["props"]
    assert got["classification"] == row["label"] and got["agent"] == row["agent_name"]
    assert (got["country"], got["device"], got["browser"], got["os"]) == (
        row["country"],
        row["device"],
        row["browser"],
        row["os"],
    )
    assert (got["source"], got["referrer"]) == (row["source"], row["referrer_host"])
    assert not PRIVATE & set(got)


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_event_log_is_the_newest_selected_hits(world, zone):
    for span in RANGES:
        for cls in CLASSES:
            q, data = q_for(world, zone, {**span, **cls, "limit": "25"})
            result = explore.events(q)
            expected = xref.ref_events(q, data)
            assert [e["id"] for e in result["events"]] == [e["event_uid"] for e in expected[:25]], (
                span,
                cls,
            )
            for got, row in zip(result["events"], expected, strict=False):
                _checked_event(got, row, q.tz)
            assert result["count"] == min(25, len(expected))
            assert (result["next_cursor"] is not None) == (len(expected) >= 25)


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_event_pages_follow_the_cursor_without_gaps(world, zone):
    q, data = q_for(world, zone, {"since": "2024-10-29", "until": "2024-11-06", "limit": "7"})
    seen, cursor, pages = [], None, 0
    while True:
        page = explore.events(q, cursor=cursor)
        seen += [e["id"] for e in page["events"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [e["event_uid"] for e in xref.ref_events(q, data)]
    assert seen == expected and len(expected) > 50
    assert pages == len(expected) // 7 + 1


def test_event_log_of_one_session(world):
    q, data = q_for(
        world, "new_york", {"period": "all", "label": "all"}, first_seen=lambda: ref.START
    )
    session = max(data["visits"], key=lambda v: v["pageviews"])["id"]
    result = explore.events(q, session_id=session)
    expected = xref.ref_events(q, data, session_id=session)
    assert [e["id"] for e in result["events"]] == [e["event_uid"] for e in expected]
    assert len(expected) >= 2 and {e["session_id"] for e in result["events"]} == {session}


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_combined_filters_on_every_explorer(world, zone):
    for filters in COMBINED:
        args = {"since": "2024-10-29", "until": "2024-11-06", "limit": "1000", **filters}
        q, data = q_for(world, zone, args)
        got = [e["id"] for e in explore.events(q)["events"]]
        assert got == [e["event_uid"] for e in xref.ref_events(q, data)], filters
        sessions = [s["session_id"] for s in explore.sessions(q)["sessions"]]
        assert sessions == [v["id"] for v in xref.ref_sessions(q, data)], filters
        _assert_distribution(q, data)
        _assert_heatmap(q, data)


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_sessions_list_and_paging(world, zone):
    for cls in CLASSES:
        q, data = q_for(world, zone, {"period": "7d", **cls, "limit": "9"})
        expected = xref.ref_sessions(q, data)
        seen, cursor = [], None
        while True:
            page = explore.sessions(q, cursor=cursor)
            assert page["count"] <= 9
            seen += page["sessions"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [s["session_id"] for s in seen] == [v["id"] for v in expected], cls
        for got, visit in zip(seen, expected, strict=True):
            assert got["started_at"] == xref.z(visit["started_at"])
            assert got["local_start"] == visit["started_at"].astimezone(q.tz).isoformat()
            assert (got["entry_page"], got["exit_page"]) == (
                visit["entry_path"],
                visit["exit_path"],
            )
            assert (got["duration"], got["pageviews"], got["bounce"]) == (
                visit["duration_s"],
                visit["pageviews"],
                visit["is_bounce"],
            )
            assert (got["classification"], got["agent"], got["source"], got["country"]) == (
                visit["label"],
                visit["agent_name"],
                visit["source"],
                visit["country"],
            )
            assert not PRIVATE & set(got)


def _assert_distribution(q, data) -> None:
    result = explore.duration_distribution(q)
    expected = xref.ref_distribution(q, data)
    assert result["sessions"] == expected["sessions"]
    assert result["average_duration"] == expected["average_duration"]
    assert [b["bucket"] for b in result["distribution"]] == [n for n, _, _ in xref.DURATIONS]
    for bucket in result["distribution"]:
        counts = expected["counts"][bucket["bucket"]]
        assert {k: bucket[k] for k in counts} == counts, bucket
    assert sum(b["sessions"] for b in result["distribution"]) == result["sessions"]


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_duration_distribution_matches_reference(world, zone):
    for span in RANGES:
        for cls in CLASSES:
            q, data = q_for(world, zone, {**span, **cls})
            _assert_distribution(q, data)


def test_one_sessions_events_in_order(world):
    data = world["data"]["kathmandu"]
    site = world["sites"]["kathmandu"]
    with_end = next(
        v["id"]
        for v in data["visits"]
        if any(e["name"] == "session_end" and e["session_id"] == v["id"] for e in data["events"])
    )
    detail = explore.session_detail(site.id, with_end, site_tz(site), 1000)
    assert [e["id"] for e in detail["events"]] == xref.ref_session_events(data, with_end)
    assert detail["events"][-1]["event"] == "session_end"
    assert detail["session"]["session_id"] == with_end
    assert detail["count"] == len(detail["events"])
    # A session of the other site is not found through this one.
    foreign = world["data"]["new_york"]["visits"][0]["id"]
    with pytest.raises(Exception) as caught:
        explore.session_detail(site.id, foreign, site_tz(site), 1000)
    assert getattr(caught.value, "status", None) == 404


def site_tz(site):
    return explore.site_zone(site.timezone)


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_properties_match_reference(world, zone):
    for cls in CLASSES:
        q, data = q_for(world, zone, {"since": "2024-10-29", "until": "2024-11-06", **cls})
        result = explore.properties(q)
        expected = xref.ref_properties(q, data)
        assert result["events"] == expected["events"], cls
        assert result["sampled"] is False
        got = {p["key"]: p for p in result["properties"]}
        assert set(got) == set(expected["properties"])
        for key, want in expected["properties"].items():
            assert got[key]["count"] == want["count"]
            assert got[key]["events"] == want["events"]
            top = {v["value"]: v["count"] for v in got[key]["top_values"]}
            assert top == want["values"]  # fewer than 10 values each: all of them
        counts = [p["count"] for p in result["properties"]]
        assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_properties_received_by_event_name(world, zone):
    q, data = q_for(world, zone, {"period": "7d", "classification": "all"})
    result = explore.properties_received(q)
    expected = xref.ref_received(q, data)
    assert {e["event"] for e in result["events"]} == set(expected) >= {"pageview", "signup"}
    for entry in result["events"]:
        want = expected[entry["event"]]
        assert entry["count"] == want["count"]
        assert {p["key"]: p["count"] for p in entry["properties"]} == dict(want["keys"])
        for prop in entry["properties"]:
            assert prop["types"] == sorted(want["types"][prop["key"]])
    signup = next(e for e in result["events"] if e["event"] == "signup")
    assert {p["key"] for p in signup["properties"]} >= {"plan", "count"}


def _assert_heatmap(q, data) -> None:
    result = heatmap(q)
    expected = xref.ref_heatmap(q, data)
    got = {(c["day"], c["hour"]): c for c in result["heatmap"]}
    assert set(got) == set(expected)
    for cell, want in expected.items():
        assert {k: got[cell][k] for k in want} == want, cell
        assert got[cell]["day_name"] == xref.DAY_NAMES[cell[0]]
    for day in range(7):
        for hour in range(24):
            wanted = expected.get((day, hour), {}).get("visitors", 0)
            assert result["grid"][day][hour] == wanted
    if expected:
        best = max(expected.items(), key=lambda kv: (kv[1]["visitors"], kv[1]["pageviews"]))
        peak = result["peak"]
        assert (peak["visitors"], peak["pageviews"]) == (best[1]["visitors"], best[1]["pageviews"])
    else:
        assert result["heatmap"] == [] and result["peak"] is None


@pytest.mark.parametrize("zone", sorted(ZONES))
def test_heatmap_in_the_site_time_zone(world, zone):
    for span in RANGES:
        for cls in CLASSES:
            q, data = q_for(world, zone, {**span, **cls})
            _assert_heatmap(q, data)


def test_heatmap_hours_are_local_not_utc(world):
    """Kathmandu is UTC+5:45: a hit at 18:20 UTC on a Monday is Tuesday 00:05 there."""
    q, data = q_for(world, "kathmandu", {"since": "2024-10-29", "until": "2024-11-06"})
    cells = {(c["day"], c["hour"]) for c in heatmap(q)["heatmap"]}
    local = {
        (e["ts"].astimezone(q.tz).weekday(), e["ts"].astimezone(q.tz).hour)
        for e in ref.ref_hits(q, data)
        if e["label"] == "human"
    }
    utc = {
        (e["ts"].weekday(), e["ts"].hour) for e in ref.ref_hits(q, data) if e["label"] == "human"
    }
    assert cells == local and local != utc


def test_heatmap_metric_chooses_grid_and_peak(world):
    q, data = q_for(world, "new_york", {"period": "7d", "label": "all"})
    result = heatmap(q, "pageviews")
    expected = xref.ref_heatmap(q, data)
    best = max(v["pageviews"] for v in expected.values())
    assert result["metric"] == "pageviews" and result["peak"]["pageviews"] == best
    assert sum(map(sum, result["grid"])) == sum(v["pageviews"] for v in expected.values())


def test_empty_range_everywhere(world):
    q, _ = q_for(world, "new_york", {"since": "2023-01-01", "until": "2023-01-02"})
    assert explore.events(q)["events"] == [] and explore.events(q)["next_cursor"] is None
    assert explore.sessions(q)["sessions"] == []
    dist = explore.duration_distribution(q)
    assert dist["sessions"] == 0 and all(b["sessions"] == 0 for b in dist["distribution"])
    assert len(dist["distribution"]) == 7
    props = explore.properties(q)
    assert props["events"] == [] and props["properties"] == []
    assert explore.properties_received(q)["events"] == []
    empty = heatmap(q)
    assert empty["heatmap"] == [] and empty["peak"] is None
    assert empty["grid"] == [[0] * 24 for _ in range(7)]


# The API ---------------------------------------------------------------------------

SPAN = "since=2024-10-29&until=2024-11-06"
ENDPOINTS = [
    "events",
    "sessions",
    "sessions/distribution",
    "properties",
    "properties/received",
    "heatmap",
]


def get(client, url, key):
    return client.get(url, headers=bearer(key))


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_explorer_on_its_paths(client, world, path):
    tenant, site = world["tenant"], world["sites"]["new_york"]
    canonical = get(client, f"/api/v1/sites/{site.id}/{path}?{SPAN}", tenant.key)
    assert canonical.status_code == 200, canonical.get_json()
    body = canonical.get_json()
    assert body["data"]["query"]["site_id"] == site.id
    team = f"/api/v1/teams/{tenant.team.slug}/analytics/{site.id}/{path}?{SPAN}"
    assert get(client, team, tenant.key).get_json() == body
    seed = client.get(
        f"/api/v1/{path}?project={site.domain}&{SPAN}", headers={"X-API-Key": tenant.key}
    )
    assert seed.status_code == 200 and seed.get_json() == body


def test_api_bodies_are_the_reports(client, world):
    tenant, site = world["tenant"], world["sites"]["new_york"]
    args = {"since": "2024-10-29", "until": "2024-11-06"}
    q = parse_query(site, args)
    base = f"/api/v1/sites/{site.id}"
    events = get(client, f"{base}/events?{SPAN}&limit=5", tenant.key).get_json()["data"]
    assert events["events"] == explore.events(parse_query(site, {**args, "limit": "5"}))["events"]
    assert events["limit"] == 5 and events["next_cursor"]
    older = get(client, f"{base}/events?{SPAN}&limit=5&cursor={events['next_cursor']}", tenant.key)
    assert older.status_code == 200
    assert older.get_json()["data"]["events"][0]["timestamp"] <= events["events"][-1]["timestamp"]
    heat = get(client, f"{base}/heatmap?{SPAN}", tenant.key).get_json()["data"]
    assert heat["heatmap"] == heatmap(q)["heatmap"] and heat["timezone"] == "America/New_York"
    dist = get(client, f"/api/v1/sessions/distribution?site={site.id}&{SPAN}", tenant.key)
    assert (
        dist.get_json()["data"]["distribution"] == explore.duration_distribution(q)["distribution"]
    )


def test_session_detail_paths_and_isolation(client, world):
    tenant, site = world["tenant"], world["sites"]["new_york"]
    session = world["data"]["new_york"]["visits"][3]["id"]
    urls = [
        f"/api/v1/sites/{site.id}/sessions/{session}",
        f"/api/v1/teams/{tenant.team.slug}/analytics/{site.id}/sessions/{session}",
        f"/api/v1/session/{session}",
    ]
    bodies = [get(client, u, tenant.key) for u in urls]
    assert all(b.status_code == 200 for b in bodies), [b.get_json() for b in bodies]
    assert bodies[0].get_json() == bodies[1].get_json() == bodies[2].get_json()
    data = bodies[0].get_json()["data"]
    assert [e["id"] for e in data["events"]] == xref.ref_session_events(
        world["data"]["new_york"], session
    )
    assert not PRIVATE & set(data["session"])
    other_site = world["sites"]["kathmandu"]
    assert (
        get(client, f"/api/v1/sites/{other_site.id}/sessions/{session}", tenant.key).status_code
        == 404
    )
    for odd in ("no-such-session", "x" * 300, "%E2%9C%93", "a%00b"):
        response = get(client, f"/api/v1/session/{odd}", tenant.key)
        assert response.status_code in (400, 404) and response.is_json, odd
    outsider = make_tenant("outsider")
    for url in [*urls, f"/api/v1/sites/{site.id}/events", f"/api/v1/heatmap?site={site.id}"]:
        response = get(client, url, outsider.key)
        assert response.status_code == 404, url
        assert response.get_json()["error"] == "not_found"
    limited = make_key(tenant.team, tenant.owner, ["stats:read"], site_id=other_site.id)
    assert get(client, f"/api/v1/session/{session}", limited).status_code == 404
    # An outsider cannot tell another team's session from one that does not exist.
    theirs = get(client, f"/api/v1/session/{session}", outsider.key).get_json()
    assert theirs == get(client, "/api/v1/session/no-such-session", outsider.key).get_json()
    # ?site= names the site (seed 000): the session must belong to it.
    named = get(client, f"/api/v1/session/{session}?site={site.id}", tenant.key)
    assert named.get_json() == bodies[0].get_json()
    wrong = get(client, f"/api/v1/session/{session}?site={other_site.id}", tenant.key)
    assert wrong.status_code == 404


def test_a_sessions_events_need_no_range(client, world):
    tenant, site = world["tenant"], world["sites"]["new_york"]
    session = world["data"]["new_york"]["visits"][3]["id"]
    path = f"/api/v1/events?site={site.id}&session_id={session}&classification=all"
    response = get(client, path, tenant.key)
    events = response.get_json()["data"]["events"]
    expected = [e for e in world["data"]["new_york"]["events"] if e["session_id"] == session]
    assert events and len(events) == len([e for e in expected if e["name"] != "session_end"])


def test_a_key_without_stats_read_is_403(client, world):
    tenant, site = world["tenant"], world["sites"]["new_york"]
    key = make_key(tenant.team, tenant.owner, ["sites:read"])
    session = world["data"]["new_york"]["visits"][0]["id"]
    for path in [*ENDPOINTS, f"sessions/{session}"]:
        response = get(client, f"/api/v1/sites/{site.id}/{path}", key)
        assert response.status_code == 403, path
        assert response.get_json()["required_scope"] == "stats:read"
    assert get(client, f"/api/v1/session/{session}", key).status_code == 403


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("events", "limit=0", "limit"),
        ("events", "limit=1001", "limit"),
        ("events", "limit=ten", "limit"),
        ("events", "since=yesterday-ish", "since"),
        ("events", "cursor=%%%", "cursor"),
        ("events", "cursor=bm90LWEtY3Vyc29y", "cursor"),
        ("events", "cursor=" + explore.encode_cursor(NOW, "9" * 30), "cursor"),
        ("events", "cursor=" + explore.encode_cursor(NOW, "x1"), "cursor"),
        ("events", "session_id=" + "x" * 65, "session_id"),
        ("sessions", "cursor=Zm9v", "cursor"),
        ("sessions", "classification=martians", "classification"),
        ("heatmap", "metric=bounces", "metric"),
        ("heatmap", "country=Nepal", "country"),
        ("properties", "period=forever", "period"),
        ("sessions/distribution", "until=2024-13-45&since=2024-01-01", "until"),
        ("sessions/abc", "limit=-1", "limit"),
    ],
)
def test_bad_parameters_are_422(client, bare, path, query, field):
    tenant, site = bare, bare.site
    response = get(client, f"/api/v1/sites/{site.id}/{path}?{query}", tenant.key)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["error"] == "validation_failed" and field in body["errors"]


def test_openapi_lists_the_explorers(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    for path in [*ENDPOINTS, "sessions/{session_id}", "query"]:
        assert f"/api/v1/sites/{{site_id}}/{path}" in doc["paths"], path
    assert "get" in doc["paths"]["/api/v1/events"] and "post" in doc["paths"]["/api/v1/events"]
    assert "/api/v1/session/{session_id}" in doc["paths"]
    heat = doc["paths"]["/api/v1/sites/{site_id}/heatmap"]["get"]
    assert heat["x-required-scope"] == "stats:read"
    assert {"metric", "period", "classification"} <= {p["name"] for p in heat["parameters"]}
    events = doc["paths"]["/api/v1/heatmap"]["get"]["responses"]["200"]
    assert events["content"]["application/json"]["schema"]
