"""The analytics endpoints: paths and seed aliases, auth, 422s, and the report they serve."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert

from pulse.analytics import reports
from pulse.analytics.query import parse_query
from pulse.extensions import db
from pulse.models import Event, Visit, utcnow
from tests import analytics_reference as ref
from tests.factories import add_member, bearer, make_key, make_site, make_tenant, make_user, sign_in

SPAN = "since=2024-10-30&until=2024-11-05"
REPORTS = [
    "stats",
    "insights",
    "timeseries",
    "pages",
    "pages/top",
    "pages/entry",
    "pages/exit",
    "sources",
    "referrers",
    "channels",
    "utm",
    "geo",
    "countries",
    "devices",
    "browsers",
    "os",
    "agents",
    "breakdown",
    "sessions/daily",
    "engagement",
    "realtime",
    "live",
]


@pytest.fixture
def tenant(app):
    tenant = make_tenant("reports")
    tenant.site.timezone = "America/New_York"
    db.session.commit()
    ref.generate(tenant.site.id, tenant.site.timezone, seed=3, visits=60)
    return tenant


def get(client, path, key):
    return client.get(path, headers=bearer(key))


@pytest.mark.parametrize("report", REPORTS)
def test_every_report_answers_on_the_site_and_team_paths(client, tenant, report):
    site = tenant.site
    canonical = get(client, f"/api/v1/sites/{site.id}/{report}?{SPAN}", tenant.key)
    assert canonical.status_code == 200, canonical.get_json()
    body = canonical.get_json()["data"]
    assert body["query"]["site_id"] == site.id
    assert body["query"]["timezone"] == "America/New_York"
    team_path = f"/api/v1/teams/{tenant.team.slug}/analytics/{site.id}/{report}?{SPAN}"
    if report not in ("pages/top", "countries", "live"):
        assert get(client, team_path, tenant.key).get_json() == canonical.get_json()


def test_stats_body_is_the_overview(client, tenant):
    body = get(client, f"/api/v1/sites/{tenant.site.id}/stats?{SPAN}", tenant.key).get_json()
    q = parse_query(tenant.site, {"since": "2024-10-30", "until": "2024-11-05"})
    expected = reports.overview(q)
    assert {k: body["data"][k] for k in expected} == expected
    assert body["data"]["visitors"] > 0
    # Seed 002's stats come with the period comparison; compare=false leaves it out.
    assert body["data"]["metrics"]["visitors"]["current"] == expected["visitors"]
    plain = get(client, f"/api/v1/sites/{tenant.site.id}/stats?{SPAN}&compare=false", tenant.key)
    assert "metrics" not in plain.get_json()["data"]


def test_a_key_in_the_query_string_reads_analytics(client, tenant):
    path = f"/api/v1/sites/{tenant.site.id}/stats?{SPAN}"
    with_header = get(client, path, tenant.key).get_json()
    for name in ("token", "key", "api_key"):
        response = client.get(f"{path}&{name}={tenant.key}")
        assert response.status_code == 200, name
        assert response.get_json() == with_header
    assert client.get(f"{path}&token=sk_live_wrong").status_code == 401
    assert client.get(path).status_code == 401


def test_pages_with_an_unknown_type_is_a_422(client, tenant):
    response = get(client, f"/api/v1/pages?site={tenant.site.id}&type=bogus", tenant.key)
    assert response.status_code == 422
    assert "type" in response.get_json()["errors"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/stats?site={id}",
        "/api/v1/stats?siteId={id}",
        "/api/v1/stats?project={name}",
        "/api/v1/stats?project={domain}",
        "/api/v1/stats?site_key={key}",
        "/analytics/overview?site={id}",
        "/api/v1/teams/{team}/analytics/{id}/stats",
    ],
)
def test_seed_aliases_of_stats(client, tenant, path):
    site = tenant.site
    url = path.format(
        id=site.id, name=site.name, domain=site.domain, key=site.site_key, team=tenant.team.slug
    )
    response = client.get(
        f"{url}{'&' if '?' in url else '?'}{SPAN}", headers={"X-API-Key": tenant.key}
    )
    assert response.status_code == 200, response.get_json()
    canonical = get(client, f"/api/v1/sites/{site.id}/stats?{SPAN}", tenant.key)
    assert response.get_json() == canonical.get_json()


def test_seed_001_paths(client, tenant):
    for path in ("sessions/daily", "pages/top", "geo", "engagement", "sources", "realtime"):
        response = get(client, f"/analytics/{path}?site={tenant.site.id}&{SPAN}", tenant.key)
        assert response.status_code == 200, (path, response.get_json())
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    preflight = client.options("/analytics/overview")
    assert preflight.status_code == 204
    anonymous = client.get("/analytics/overview")
    assert anonymous.status_code == 401 and anonymous.is_json
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")


def test_compare_and_group_by_in_seed_002_shape(client, tenant):
    url = f"/api/v1/stats?project={tenant.site.name}&period=7d&compare=previous&groupBy=day"
    data = get(client, url, tenant.key).get_json()["data"]
    assert set(data["metrics"]["visitors"]) == {"current", "previous", "change", "change_pct"}
    assert {"unique_users", "total_events", "total_sessions", "bounce_rate"} <= set(data["metrics"])
    assert len(data["timeseries"]) == 7
    insights = get(client, f"/api/v1/insights?site={tenant.site.id}&period=7d", tenant.key)
    assert "metrics" in insights.get_json()["data"]


def test_breakdown_by_property_and_pages_by_type(client, tenant):
    base = f"/api/v1/breakdown?site={tenant.site.id}&{SPAN}&classification=all"
    plan = get(client, f"{base}&property=plan", tenant.key).get_json()["data"]
    assert plan["dimension"] == "prop.plan"
    assert {r["value"] for r in plan["rows"]} <= {"free", "pro", None}
    by_country = get(client, f"{base}&property=country&limit=2", tenant.key).get_json()["data"]
    assert by_country["dimension"] == "country" and len(by_country["rows"]) == 2
    row = by_country["rows"][0]
    assert row["country"] == row["value"]
    assert row["humans"] + row["agents"] + row["bots"] >= row["visitors"] > 0
    entry = get(client, f"/api/v1/pages?site={tenant.site.id}&{SPAN}&type=entry", tenant.key)
    assert entry.get_json()["data"]["dimension"] == "entry_page"
    utm = f"/api/v1/sites/{tenant.site.id}/utm?field=campaign&{SPAN}"
    assert get(client, utm, tenant.key).get_json()["data"]["dimension"] == "utm_campaign"


def test_agents_default_to_non_human_traffic(client, tenant):
    data = get(client, f"/api/v1/agents?site={tenant.site.id}&{SPAN}", tenant.key).get_json()
    assert data["data"]["query"]["classification"] == ["agent", "bot"]
    assert all(row["agent"] for row in data["data"]["rows"])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("range=abc", "range"),
        ("period=forever", "period"),
        ("country=USA", "country"),
        ("limit=5000", "limit"),
        ("classification=robots", "classification"),
        ("groupBy=minute", "groupBy"),
        ("since=2024-11-05&until=2024-11-01", "until"),
        ("property=a%22b", "property"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(client, tenant, query, field):
    path = "breakdown" if field == "property" else "stats"
    response = get(client, f"/api/v1/sites/{tenant.site.id}/{path}?{query}", tenant.key)
    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["error"] == "validation_failed"
    assert field in body["errors"]


def test_utm_field_must_be_a_utm_tag(client, tenant):
    response = get(client, f"/api/v1/sites/{tenant.site.id}/utm?field=color", tenant.key)
    assert response.status_code == 422 and "field" in response.get_json()["errors"]


def test_another_teams_site_is_404_and_a_key_without_the_scope_403(client, tenant):
    other = make_tenant("outsider")
    for url in (
        f"/api/v1/sites/{tenant.site.id}/stats",
        f"/api/v1/stats?site={tenant.site.id}",
        f"/analytics/overview?site={tenant.site.site_key}",
        f"/api/v1/teams/{other.team.slug}/analytics/{tenant.site.id}/stats",
    ):
        response = get(client, url, other.key)
        assert response.status_code == 404, url
        assert response.get_json()["error"] == "not_found"
    # Own team in the path, another team's site: still 404.
    mismatch = f"/api/v1/teams/{tenant.team.slug}/analytics/{other.site.id}/stats"
    assert get(client, mismatch, tenant.key).status_code == 404
    no_stats = make_key(tenant.team, tenant.owner, ["sites:read"])
    for url in (f"/api/v1/sites/{tenant.site.id}/pages", f"/api/v1/stats?site={tenant.site.id}"):
        response = get(client, url, no_stats)
        assert response.status_code == 403
        assert response.get_json()["required_scope"] == "stats:read"


def test_site_less_paths_need_a_site_when_there_are_several(client, tenant):
    make_site(tenant.team, tenant.owner, "second.example")
    response = get(client, "/api/v1/stats", tenant.key)
    assert response.status_code == 422 and "site" in response.get_json()["errors"]
    one_site = make_key(tenant.team, tenant.owner, ["stats:read"], site_id=tenant.site.id)
    response = get(client, f"/api/v1/stats?{SPAN}", one_site)
    assert response.status_code == 200
    assert response.get_json()["data"]["query"]["site_id"] == tenant.site.id


def test_a_viewer_signed_in_reads_the_stats(client, tenant):
    viewer = make_user("viewer@example.test")
    add_member(tenant.team, viewer, "viewer")
    sign_in(client, viewer.email)
    response = client.get(f"/api/v1/sites/{tenant.site.id}/stats?{SPAN}")
    assert response.status_code == 200


def test_realtime_sees_hits_of_the_last_minutes(client, tenant):
    now = utcnow()
    rows = [
        {
            "site_id": tenant.site.id,
            "event_uid": f"live-{i}",
            "ts": now - timedelta(seconds=60 * i),
            "name": "pageview",
            "session_id": f"live-{i % 2}",
            "visitor_id": 1000 + i % 2,
            "pathname": "/now" if i < 5 else "/earlier",
            "label": "human" if i != 1 else "agent",
            "props": {},
        }
        for i in range(8)
    ]
    db.session.execute(insert(Event), rows)
    db.session.execute(
        insert(Visit),
        [
            {
                "id": "live-0",
                "site_id": tenant.site.id,
                "visitor_id": 1000,
                "started_at": now,
                "last_seen_at": now,
            },
            {
                "id": "live-1",
                "site_id": tenant.site.id,
                "visitor_id": 1001,
                "started_at": now,
                "last_seen_at": now,
            },
        ],
    )
    db.session.commit()
    live = get(client, f"/api/v1/live?site={tenant.site.id}", tenant.key).get_json()["data"]
    assert live["visitors"] == 2 and live["agents"] == 1
    assert live["pageviews"] == 4  # minutes 0, 2, 3, 4 are human; minute 1 is an agent
    assert live["pages"][0]["page"] == "/now"
    assert all(p["page"] != "/earlier" for p in live["pages"])


def test_openapi_documents_the_parameters(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    stats = doc["paths"]["/api/v1/sites/{site_id}/stats"]["get"]
    names = {p["name"] for p in stats["parameters"]}
    assert {"site_id", "period", "range", "since", "compare", "classification", "page"} <= names
    assert stats["x-required-scope"] == "stats:read"
    assert "/analytics/overview" in doc["paths"]
    assert "/api/v1/teams/{team}/analytics/{site_id}/stats" in doc["paths"]
