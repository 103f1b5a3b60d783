"""The live snapshot (seeds 000/001/002 `live` / `realtime`) and the OpenAPI entries."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import insert

from pulse.extensions import db
from pulse.models import Event, utcnow
from tests.factories import bearer, make_key, make_tenant

AGENT_NAMES = {"agent": ["ClaudeBot", "GPTBot"], "bot": ["Googlebot"]}


@pytest.fixture
def live_rows(app):
    """Hits of the last twelve minutes (and one a minute ahead), humans, agents and bots."""
    tenant = make_tenant("live")
    rng = random.Random(4)
    now = utcnow()
    rows = []
    ages = [a for a in range(-45, 720, 7) if not 280 <= a <= 320]  # none near the edge
    for i in range(80):
        label = rng.choice(["human", "human", "agent", "bot"])
        rows.append(
            {
                "site_id": tenant.site.id,
                "event_uid": f"live-{i}",
                "ts": now - timedelta(seconds=rng.choice(ages)),
                "name": rng.choice(["pageview", "pageview", "signup"]),
                "session_id": f"s{i % 17}",
                "visitor_id": rng.randrange(25),
                "pathname": rng.choice(["/", "/docs", "/pricing"]),
                "label": label,
                "agent_name": rng.choice(AGENT_NAMES[label]) if label != "human" else None,
                "props": {},
            }
        )
    db.session.execute(insert(Event), rows)
    db.session.commit()
    return tenant, rows, now


def expected_live(rows, now):
    window = [r for r in rows if now - timedelta(minutes=5) <= r["ts"] < now + timedelta(minutes=1)]
    humans = [r for r in window if r["label"] == "human"]
    agents: dict[str, list] = defaultdict(list)
    for r in window:
        if r["label"] != "human":
            agents[r["agent_name"]].append(r)
    agents_now = [
        {
            "agent": name,
            "visitors": len({r["visitor_id"] for r in hits}),
            "hits": len(hits),
            "_views": sum(1 for r in hits if r["name"] == "pageview"),
        }
        for name, hits in agents.items()
    ]
    agents_now.sort(key=lambda a: (-a["visitors"], -a["_views"], a["agent"]))
    return {
        "visitors": len({r["visitor_id"] for r in humans}),
        "pageviews": sum(1 for r in humans if r["name"] == "pageview"),
        "events": sum(1 for r in humans if r["name"] != "pageview"),
        "agents_now": [{k: v for k, v in a.items() if k != "_views"} for a in agents_now],
    }


def test_live_snapshot_matches_plain_python_on_every_path(client, live_rows):
    tenant, rows, now = live_rows
    site = tenant.site
    paths = [
        f"/api/v1/sites/{site.id}/live",
        f"/api/v1/sites/{site.id}/realtime",
        f"/api/v1/teams/{tenant.team.slug}/analytics/{site.id}/live",
        f"/api/v1/live?siteId={site.id}",
        f"/analytics/realtime?site={site.id}",
    ]
    bodies = [client.get(p, headers=bearer(tenant.key)) for p in paths]
    assert all(b.status_code == 200 for b in bodies), [b.get_json() for b in bodies]
    data = bodies[0].get_json()["data"]
    # The request runs a moment after `now`; no hit is within 20 s of the window's edges.
    expected = expected_live(rows, now)
    assert {k: data[k] for k in expected} == expected
    assert data["window_seconds"] == 300 and data["agents_now"]
    assert {b.get_json()["data"]["visitors"] for b in bodies} == {data["visitors"]}


def test_live_auth_tenancy_and_bad_input(client, live_rows):
    tenant, _, _ = live_rows
    url = f"/api/v1/sites/{tenant.site.id}/live"
    anonymous = client.get(url)
    assert anonymous.status_code == 401 and anonymous.get_json()["error"] == "unauthorized"
    other = make_tenant("outsider")
    assert client.get(url, headers=bearer(other.key)).status_code == 404
    no_stats = make_key(tenant.team, tenant.owner, ["sites:read"])
    forbidden = client.get(url, headers=bearer(no_stats))
    assert forbidden.status_code == 403
    assert forbidden.get_json()["required_scope"] == "stats:read"
    bad = client.get(url + "?classification=robots", headers=bearer(tenant.key))
    assert bad.status_code == 422 and "classification" in bad.get_json()["errors"]


def test_openapi_lists_the_live_agent_and_anomaly_paths(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    paths = doc["paths"]
    for path in (
        "/api/v1/sites/{site_id}/stream",
        "/api/v1/teams/{team}/analytics/{site_id}/stream",
        "/api/v1/stream",
        "/api/v1/sites/{site_id}/live",
        "/api/v1/live",
        "/api/v1/sites/{site_id}/agents",
        "/api/v1/agents",
        "/api/v1/sites/{site_id}/agents/{name}",
        "/api/v1/agents/{name}",
        "/api/v1/sites/{site_id}/anomalies",
        "/analytics/anomalies",
    ):
        assert path in paths, path
        assert paths[path]["get"]["x-required-scope"] == "stats:read"
    stream_params = {
        p["name"] for p in paths["/api/v1/sites/{site_id}/stream"]["get"]["parameters"]
    }
    assert {"key", "token", "classification", "page", "lastEventId"} <= stream_params
    schemas = doc["components"]["schemas"]
    assert {"first_seen", "last_seen", "top_pages", "trend"} <= set(
        schemas["AgentRow"]["properties"]
    )
    assert "anomaly_flags" in schemas["AnomaliesOut"]["properties"]
    assert "anomaly_flags" in schemas["StatsOut"]["properties"]
