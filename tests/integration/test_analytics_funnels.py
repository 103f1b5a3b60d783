"""Funnel and retention: the reports against a brute-force reference, edge cases, the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from sqlalchemy import insert

from pulse.analytics import journeys, rollups
from pulse.analytics.funnel import funnel, make_spec
from pulse.analytics.query import parse_query
from pulse.analytics.retention import parse_retention, retention
from pulse.errors import ValidationFailed
from pulse.extensions import db
from pulse.models import Event
from pulse.models.rollup import HEAD, TAIL, WHOLE
from tests import funnel_reference as ref
from tests.factories import bearer, make_key, make_site, make_tenant

SPAN = {"since": "2024-09-02", "until": "2024-11-06"}


@pytest.fixture
def traffic(app):
    tenant = make_tenant("funnels")
    tenant.site.timezone = "America/New_York"
    db.session.commit()
    data = ref.generate(tenant.site.id, tenant.site.timezone, seed=11)
    return tenant, data


FUNNELS = [
    (["/", "/pricing", "signup"], 24, "visitor", None),
    (["/", "/pricing", "signup"], 24, "session", None),
    (["/", "/pricing", "signup"], 24 * 30, "user", None),
    (["/blog/*", "/checkout*", "purchase"], 2, "visitor", None),
    (["/blog*", "/blog*", "/blog*"], 1, "session", None),
    (["signup;plan=pro", "purchase", "/checkout/done"], 24 * 14, "user", None),
    (["page_view", "click", "page_view", "purchase"], 0.5, "visitor", None),
    ([{"page": "/"}, {"event": "signup", "properties": {"seats": 2}}], 48, "user", None),
    (["/", "/pricing", "signup"], 24, "visitor", "country"),
    (["/", "signup", "purchase"], 24 * 7, "user", "source"),
    (["page_view", "signup"], 6, "session", "prop.plan"),
    (["/pricing", "/checkout", "/checkout/done", "purchase"], 3, "visitor", "device"),
]


@pytest.mark.parametrize(("steps", "hours", "unit", "by"), FUNNELS)
def test_funnel_matches_the_reference(traffic, steps, hours, unit, by):
    tenant, data = traffic
    q = parse_query(tenant.site, SPAN, limit=3)
    spec = make_spec(steps, hours, unit, by)
    report = funnel(q, spec)
    expected = ref.ref_funnel(q, spec, data)
    assert ref.shape(report) == expected
    assert report["entered"] > 0


@pytest.mark.parametrize(
    "args",
    [
        {**SPAN, "classification": "all"},
        {**SPAN, "classification": "agent,bot"},
        {**SPAN, "country": "US"},
        {**SPAN, "source": "Google|(none)", "device": "mobile"},
        {"since": "2024-10-26", "until": "2024-11-03"},
        {"since": "2024-11-02T22:30:00", "until": "2024-11-03T03:00:00"},
    ],
)
def test_funnel_honours_range_filters_and_classification(traffic, args):
    tenant, data = traffic
    q = parse_query(tenant.site, args)
    for unit in ("visitor", "user"):
        spec = make_spec(["page_view", "signup", "page_view"], 24, unit, "country")
        assert ref.shape(funnel(q, spec)) == ref.ref_funnel(q, spec, data)


JOURNEY_FUNNELS = [
    ["/", "/pricing", "signup"],
    ["/blog/*", "/checkout*", "purchase"],
    ["/blog*", "/blog*", "/blog*"],
    ["page_view", "click", "page_view", "purchase"],
    ["signup", "no-such-event", "/"],
    ["/pricing", "/pricing"],
]


def test_funnels_over_whole_days_read_journeys_and_match_the_reference(traffic, monkeypatch):
    """Daily visitors of one label with a window of a day or more: whole days with
    journeys (PostgreSQL), and at the edges of a range of local days the part of a
    UTC day in it, answer from them, other edges from raw hits, and the sum is the
    reference's; otherwise (SQLite, several labels, sessions) raw hits answer."""
    tenant, data = traffic
    rollups.mark_existing()
    assert rollups.refresh_due(now=datetime(2024, 11, 7, 1, tzinfo=UTC)) > 0
    calls = []
    read = journeys.level_counts
    monkeypatch.setattr(journeys, "level_counts", lambda *a: calls.append(a) or read(*a))
    postgres = db.session.get_bind().dialect.name == "postgresql"
    # Local days: the range starts and ends inside UTC days, whose journeys of the
    # part in the range (the TAIL of the first, the HEAD of the last) answer.
    local_days = {"since": "2024-10-28", "until": "2024-11-04"}
    if postgres:
        parts = {p.part for p in rollups.pieces(parse_query(tenant.site, local_days), None, True)}
        assert parts == {WHOLE, HEAD, TAIL}
    for args, steps, hours in product(
        [
            SPAN,
            local_days,
            {**SPAN, "classification": "agent"},
            {"since": "2024-10-26T09:30:00", "until": "2024-11-03T12:00:00", "label": "bots"},
        ],
        JOURNEY_FUNNELS,
        (24, 24 * 30),
    ):
        q = parse_query(tenant.site, args)
        spec = make_spec(steps, hours)
        before = len(calls)
        assert ref.shape(funnel(q, spec)) == ref.ref_funnel(q, spec, data), (args, steps)
        assert len(calls) == before + postgres, (args, steps)
    # What journeys cannot answer is read raw, and is right too.
    q = parse_query(tenant.site, {**SPAN, "classification": "all"})
    for spec in (
        make_spec(JOURNEY_FUNNELS[0], 24),
        make_spec(JOURNEY_FUNNELS[0], 23.5),
        make_spec(JOURNEY_FUNNELS[0], 24, "session"),
        make_spec(["/", "signup;plan=pro"], 24),
    ):
        before = len(calls)
        assert ref.shape(funnel(q, spec)) == ref.ref_funnel(q, spec, data)
        assert len(calls) == before


def _spanning_cut(data: dict) -> tuple[datetime, datetime]:
    """The busiest UTC day of the data, and a cut in it between two hits of one visitor
    (so some visitor is seen both before and after it)."""
    by_day: dict = {}
    for e in data["events"]:
        if e["name"] != "session_end":
            by_day.setdefault(e["ts"].astimezone(UTC).date(), []).append(e)
    day = max(by_day, key=lambda d: len(by_day[d]))
    times: dict = {}
    for e in by_day[day]:
        times.setdefault(e["visitor_id"], []).append(e["ts"])
    spread = max(times.values(), key=lambda ts: max(ts) - min(ts))
    return datetime.combine(day, datetime.min.time(), UTC), min(spread) + (
        max(spread) - min(spread)
    ) / 2


def test_the_current_days_journeys_with_the_visitors_since_the_cut_match_the_reference(
    traffic, monkeypatch
):
    """A day not over: journeys up to its cut, and the visitors seen since the cut
    swapped in from raw hits (on SQLite all raw); the sum is the reference's."""
    tenant, data = traffic
    midnight, cut = _spanning_cut(data)
    rollups.mark_existing()
    rollups.refresh_due(now=midnight + timedelta(minutes=30))  # the days before are closed
    rollups.build_day(tenant.site.id, midnight.date(), cut=cut)
    db.session.commit()
    calls = []
    read = journeys.level_counts
    monkeypatch.setattr(journeys, "level_counts", lambda *a: calls.append(a) or read(*a))
    postgres = db.session.get_bind().dialect.name == "postgresql"
    start = f"{midnight:%Y-%m-%dT%H:%M:%S}Z"
    end = f"{midnight + timedelta(hours=23, minutes=59):%Y-%m-%dT%H:%M:%S}Z"
    assert rollups.open_cut(parse_query(tenant.site, {"since": start, "until": end})) == cut
    for since, cls, steps in product(
        [start, f"{midnight - timedelta(days=20):%Y-%m-%d}"],
        ["human", "agent"],
        JOURNEY_FUNNELS,
    ):
        q = parse_query(tenant.site, {"since": since, "until": end, "classification": cls})
        spec = make_spec(steps, 24)
        before = len(calls)
        assert ref.shape(funnel(q, spec)) == ref.ref_funnel(q, spec, data), (since, steps)
        assert len(calls) == before + postgres, (since, steps)


@pytest.mark.parametrize(
    "args",
    [
        {"period": "week", "periods": "8"},
        {"period": "day", "periods": "14"},
        {"cohort": "week", "since": "2024-09-10", "until": "2024-10-20"},
        {"period": "day", "since": "2024-10-25", "until": "2024-11-05", "classification": "all"},
        {"period": "week", "periods": "10", "country": "DE"},
        {"period": "week", "source": "ChatGPT", "classification": "agent"},
    ],
)
def test_retention_matches_the_reference(traffic, args):
    tenant, data = traffic
    q, grain = parse_retention(tenant.site, args, now=ref.NOW)
    report = retention(q, grain)
    expected = ref.ref_retention(q, grain, data)
    assert {k: report[k] for k in expected if k != "cohorts"} == {
        k: v for k, v in expected.items() if k != "cohorts"
    }
    assert [
        {k: c[k] for k in ("cohort", "size", "returning", "rates")} for c in report["cohorts"]
    ] == (expected["cohorts"])
    assert report["identity"] == "user_id" and report["average_rates"][0] == 1.0


def test_retention_default_is_eight_whole_weeks_up_to_now(traffic):
    tenant, _ = traffic
    q, grain = parse_retention(tenant.site, {}, now=ref.NOW)
    report = retention(q, grain)
    assert grain == "week" and report["periods"] == 8
    assert report["cohorts"][0]["cohort"] == "2024-09-16"  # a Monday, 7 weeks before this one
    assert q.start == datetime(2024, 9, 16, 4, tzinfo=UTC)  # local midnight, EDT
    assert report["users"] > 0 and report["average_rates"][1] > 0


# Exact hand-made cases ----------------------------------------------------------------


def _events(site_id: int, rows: list[tuple]) -> None:
    """rows: (ts, name, path, visitor, user, props)."""
    db.session.execute(
        insert(Event),
        [
            {
                "site_id": site_id,
                "event_uid": f"h{site_id}-{n}",
                "ts": ts,
                "name": name,
                "session_id": f"s-{visitor}",
                "visitor_id": visitor,
                "user_id": user,
                "pathname": path,
                "label": "human",
                "props": props,
            }
            for n, (ts, name, path, visitor, user, props) in enumerate(rows)
        ],
    )
    db.session.commit()


def test_steps_must_be_strictly_later_and_inside_the_window(app):
    tenant = make_tenant("exact")
    t0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
    _events(
        tenant.site.id,
        [
            # visitor 1: signup at the same instant as the pageview: not after it.
            (t0, "pageview", "/a", 1, None, {}),
            (t0, "signup", "/a", 1, None, {}),
            # visitor 2: second step exactly at the window's end: counts.
            (t0, "pageview", "/a", 2, None, {}),
            (t0 + timedelta(hours=1), "signup", "/a", 2, None, {}),
            # visitor 3: one second too late from the first /a, but a later /a restarts.
            (t0, "pageview", "/a", 3, None, {}),
            (t0 + timedelta(minutes=30), "pageview", "/a", 3, None, {}),
            (t0 + timedelta(hours=1, seconds=1), "signup", "/a", 3, None, {}),
            # visitor 4: steps in the wrong order.
            (t0, "signup", "/a", 4, None, {}),
            (t0 + timedelta(minutes=1), "pageview", "/a", 4, None, {}),
            # visitor 5: property must match.
            (t0, "pageview", "/a", 5, None, {}),
            (t0 + timedelta(minutes=1), "signup", "/a", 5, None, {"plan": "free"}),
        ],
    )
    q = parse_query(tenant.site, {"since": "2024-05-01", "until": "2024-05-01"})
    report = funnel(q, make_spec(["/a", "signup"], 1))
    assert [s["count"] for s in report["steps"]] == [5, 3]
    assert report["overall_conversion_rate"] == 0.6
    pro = funnel(q, make_spec(["/a", "signup;plan=free"], 1))
    assert [s["count"] for s in pro["steps"]] == [5, 1]


def test_wildcards_are_case_sensitive_and_literal_elsewhere(app):
    tenant = make_tenant("wild")
    t0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
    paths = ["/blog/x", "/Blog/y", "/blog_z", "/blogs%", "/blog/", "/blog"]
    _events(
        tenant.site.id,
        [(t0 + timedelta(seconds=i), "pageview", p, 10 + i, None, {}) for i, p in enumerate(paths)]
        + [(t0 + timedelta(minutes=5), "done", "/", 10 + i, None, {}) for i in range(len(paths))],
    )
    q = parse_query(tenant.site, {"since": "2024-05-01", "until": "2024-05-01"})
    assert funnel(q, make_spec(["/blog/*", "done"]))["entered"] == 2  # /blog/x, /blog/
    assert funnel(q, make_spec(["/blog_*", "done"]))["entered"] == 1  # _ is literal
    assert funnel(q, make_spec(["/blog*", "done"]))["entered"] == 5  # not /Blog/y


def test_retention_day_boundaries_follow_the_site_time_zone(app):
    tenant = make_tenant("tz")
    tenant.site.timezone = "Asia/Kathmandu"  # UTC+05:45
    db.session.commit()
    midnight = datetime(2024, 5, 2, 0, 0, tzinfo=UTC) - timedelta(hours=5, minutes=45)
    _events(
        tenant.site.id,
        [
            (midnight - timedelta(seconds=1), "pageview", "/", 1, "ann", {}),  # May 1 local
            (midnight, "pageview", "/", 2, "ann", {}),  # May 2 local
            (midnight + timedelta(hours=1), "pageview", "/", 3, "bob", {}),
            (midnight + timedelta(days=2), "pageview", "/", 4, "bob", {}),
            (midnight + timedelta(days=2), "pageview", "/", 5, None, {}),
        ],
    )
    q, grain = parse_retention(
        tenant.site, {"period": "day", "since": "2024-05-01", "until": "2024-05-04"}
    )
    report = retention(q, grain)
    assert [c["cohort"] for c in report["cohorts"]] == [
        "2024-05-01",
        "2024-05-02",
        "2024-05-03",
        "2024-05-04",
    ]
    assert report["cohorts"][0]["returning"] == [1, 1, 0, 0]
    assert report["cohorts"][1]["returning"] == [1, 0, 1]
    assert report["average_rates"] == [1.0, 0.5, 0.5, 0.0]
    assert report["unidentified_events"] == 1 and report["users"] == 2


# The API -------------------------------------------------------------------------------

QS = "since=2024-09-02&until=2024-11-06"


def test_get_and_post_answer_the_same_report(client, traffic):
    tenant, data = traffic
    site = tenant.site
    get = client.get(
        f"/api/v1/sites/{site.id}/funnel?{QS}&step=/&step=/pricing&step=signup"
        "&conversion_window_hours=24&breakdown=country",
        headers=bearer(tenant.key),
    )
    assert get.status_code == 200, get.get_json()
    body = {
        "steps": ["/", {"page": "/pricing"}, {"event": "signup"}],
        "conversion_window_hours": 24,
        "breakdown": "country",
        "since": "2024-09-02",
        "until": "2024-11-06",
    }
    post = client.post(f"/api/v1/sites/{site.id}/funnel", json=body, headers=bearer(tenant.key))
    assert post.status_code == 200, post.get_json()
    team = client.post(
        f"/api/v1/teams/{tenant.team.slug}/analytics/{site.id}/funnel",
        json=body,
        headers=bearer(tenant.key),
    )
    seed = client.post(
        "/api/v1/funnel", json={**body, "project": str(site.id)}, headers=bearer(tenant.key)
    )
    assert get.get_json() == post.get_json() == team.get_json() == seed.get_json()
    report = post.get_json()["data"]
    assert report["unit"] == "visitor" and 0 <= report["overall_conversion_rate"] <= 1
    assert [s["step"] for s in report["steps"]] == [1, 2, 3]
    assert report["steps"][2]["type"] == "event" and report["steps"][0]["match"] == "/"
    q = parse_query(site, {**SPAN})
    spec = make_spec(["/", "/pricing", "signup"], 24, None, "country")
    assert ref.shape(report) == ref.ref_funnel(q, spec, data)


def test_post_takes_filters_and_classification_from_the_body(client, traffic):
    tenant, data = traffic
    body = {
        "steps": ["page_view", "signup"],
        "unit": "user",
        "conversion_window_hours": 72,
        "filters": {"country": "US"},
        "classification": "all",
        **SPAN,
    }
    answer = client.post(
        f"/api/v1/sites/{tenant.site.id}/funnel", json=body, headers=bearer(tenant.key)
    )
    report = answer.get_json()["data"]
    assert report["query"]["filters"] == {"country": "US"}
    assert report["query"]["classification"] == ["all"]
    q = parse_query(tenant.site, {**SPAN, "country": "US", "classification": "all"})
    assert ref.shape(report) == ref.ref_funnel(q, make_spec(body["steps"], 72, "user"), data)


def test_retention_endpoint_and_aliases(client, traffic):
    tenant, _ = traffic
    site = tenant.site
    path = f"/api/v1/sites/{site.id}/retention?period=day&since=2024-10-01&until=2024-10-10"
    answer = client.get(path, headers=bearer(tenant.key))
    assert answer.status_code == 200, answer.get_json()
    report = answer.get_json()["data"]
    assert report["period"] == "day" and report["periods"] == 10
    assert report["identity"] == "user_id" and report["average_rates"][0] == 1.0
    assert len(report["cohorts"][0]["returning"]) == 10
    team = client.get(
        f"/api/v1/teams/{tenant.team.slug}/analytics/{site.id}/retention"
        "?period=day&since=2024-10-01&until=2024-10-10",
        headers=bearer(tenant.key),
    )
    seed = client.get(
        f"/api/v1/retention?site={site.id}&period=day&since=2024-10-01&until=2024-10-10",
        headers=bearer(tenant.key),
    )
    assert team.get_json() == seed.get_json() == answer.get_json()


@pytest.mark.parametrize(
    "query",
    [
        "step=/",
        "",
        "&".join(f"step=/{n}" for n in range(11)),
        "step=/&step=signup&conversion_window_hours=0",
        "step=/&step=signup&conversion_window_hours=5000",
        "step=/&step=signup&conversion_window_hours=soon",
        "step=/&step=signup&unit=device",
        "step=/&step=signup&breakdown=prop.bad%22key",
        "step=/&step=event:",
        "steps=[1,2",
        "step=/&step=signup&period=fortnight",
    ],
)
def test_bad_funnels_are_422_json(client, traffic, query):
    tenant, _ = traffic
    answer = client.get(
        f"/api/v1/sites/{tenant.site.id}/funnel?{query}", headers=bearer(tenant.key)
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"] == "validation_failed"


@pytest.mark.parametrize(
    "body",
    [
        {"steps": ["/"]},
        {"steps": ["/"] * 11},
        {"steps": ["/", {"page": "/x", "event": "y"}]},
        {"steps": ["/", {"event": "y", "colour": "red"}]},
        {"steps": ["/", "signup"], "conversion_window_hours": -1},
        {"steps": ["/", "signup"], "mystery": 1},
        {"steps": "/,signup"},
    ],
)
def test_bad_funnel_bodies_are_422_json(client, traffic, body):
    tenant, _ = traffic
    answer = client.post(
        f"/api/v1/sites/{tenant.site.id}/funnel", json=body, headers=bearer(tenant.key)
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["error"] == "validation_failed"


@pytest.mark.parametrize(
    "query",
    [
        "period=fortnight",
        "cohort=month",
        "period=week&periods=53",
        "period=day&periods=0",
        "periods=x",
    ],
)
def test_bad_retention_is_422(client, traffic, query):
    tenant, _ = traffic
    answer = client.get(
        f"/api/v1/sites/{tenant.site.id}/retention?{query}", headers=bearer(tenant.key)
    )
    assert answer.status_code == 422, answer.get_json()


def test_another_teams_site_is_404_and_a_key_without_stats_read_is_403(client, traffic):
    tenant, _ = traffic
    other = make_tenant("other")
    foreign = [
        ("get", f"/api/v1/sites/{other.site.id}/funnel?step=/&step=signup"),
        ("post", f"/api/v1/sites/{other.site.id}/funnel"),
        ("get", f"/api/v1/sites/{other.site.id}/retention"),
        ("get", f"/api/v1/teams/{tenant.team.slug}/analytics/{other.site.id}/retention"),
        ("get", f"/api/v1/retention?site={other.site.id}"),
        ("post", "/api/v1/funnel"),
    ]
    for method, path in foreign:
        body = {"steps": ["/", "signup"]}
        if path == "/api/v1/funnel":
            body["project"] = str(other.site.id)
        kwargs = {"json": body} if method == "post" else {}
        answer = getattr(client, method)(path, headers=bearer(tenant.key), **kwargs)
        assert answer.status_code == 404, (path, answer.get_json())
    writer = make_key(tenant.team, tenant.owner, ["events:write"])
    for path in (
        f"/api/v1/sites/{tenant.site.id}/funnel?step=/&step=signup",
        f"/api/v1/sites/{tenant.site.id}/retention",
    ):
        answer = client.get(path, headers=bearer(writer))
        assert answer.status_code == 403 and answer.get_json()["error"] == "access_denied"
    assert client.get(f"/api/v1/sites/{tenant.site.id}/retention").status_code == 401


def test_a_site_key_sees_only_its_site(client, traffic):
    tenant, _ = traffic
    second = make_site(tenant.team, tenant.owner, "second.example")
    scoped = make_key(tenant.team, tenant.owner, ["stats:read"], site_id=second.id)
    answer = client.get(f"/api/v1/sites/{tenant.site.id}/retention", headers=bearer(scoped))
    assert answer.status_code in (403, 404)
    own = client.get(f"/api/v1/sites/{second.id}/retention", headers=bearer(scoped))
    assert own.status_code == 200 and own.get_json()["data"]["users"] == 0


def test_openapi_lists_the_paths(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    site = doc["paths"]["/api/v1/sites/{site_id}/funnel"]
    assert {"get", "post"} <= set(site)
    assert site["post"]["x-required-scope"] == "stats:read"
    assert site["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "FunnelIn"
    )
    assert "post" in doc["paths"]["/api/v1/funnel"]
    assert "get" in doc["paths"]["/api/v1/retention"]
    assert "get" in doc["paths"]["/api/v1/teams/{team}/analytics/{site_id}/retention"]
    names = {p["name"] for p in site["get"]["parameters"]}
    assert {"step", "conversion_window_hours", "breakdown", "unit", "since"} <= names
    schemas = doc["components"]["schemas"]
    assert "overall_conversion_rate" in schemas["FunnelOut"]["properties"]
    assert "average_rates" in schemas["CohortRetentionOut"]["properties"]


def test_make_spec_rejects_what_the_api_rejects():
    with pytest.raises(ValidationFailed) as bad:
        make_spec(["/", {"page": "blog"}])
    assert "steps.1" in bad.value.errors
