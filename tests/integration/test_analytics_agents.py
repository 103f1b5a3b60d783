"""The agents report ("what AI crawlers read") against plain Python over the same rows."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from pulse.analytics import agents, rollups
from pulse.analytics.query import LABELS, Query, parse_query
from pulse.extensions import db
from pulse.models import Event, RollupAgentPage
from pulse.models.rollup import AGENT_PAGES_LAYOUT, HEAD, TAIL, WHOLE
from tests import analytics_reference as ref
from tests.factories import bearer, make_key, make_site, make_tenant

NOW = datetime(2024, 11, 5, 15, 30, tzinfo=UTC)
SPAN = {"since": "2024-10-30", "until": "2024-11-05"}
CATEGORY = {"ClaudeBot": "ai-crawler", "Googlebot": "search-crawler"}


def _world(zone: str):
    tenant = make_tenant("agents")
    tenant.site.timezone = zone
    other = make_site(tenant.team, tenant.owner, "other.example")
    db.session.commit()
    data = ref.generate(tenant.site.id, tenant.site.timezone, seed=11, visits=220)
    ref.generate(other.id, "UTC", seed=12, visits=40)  # must never be counted
    for name, category in CATEGORY.items():
        db.session.execute(
            update(Event).where(Event.agent_name == name).values(agent_category=category)
        )
    db.session.commit()
    for e in data["events"]:
        e["agent_category"] = CATEGORY.get(e["agent_name"])
    return tenant, data


@pytest.fixture
def world(app):
    return _world("America/New_York")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def agent_hits(q: Query, data: dict) -> list[dict]:
    return [
        e
        for e in ref.ref_hits(q, data)
        if e["agent_name"] is not None and (q.labels is None or e["label"] in q.labels)
    ]


def expected_rows(q: Query, data: dict) -> list[dict]:
    """Every agent, computed from the rows one rule at a time."""
    by_name: dict[str, list[dict]] = defaultdict(list)
    for e in agent_hits(q, data):
        by_name[e["agent_name"]].append(e)
    previous = Counter(e["agent_name"] for e in agent_hits(q.previous(), data))
    interval = q.bucket_interval
    labels = ref.expected_buckets(q, interval)
    rows = []
    for name, hits in by_name.items():
        pages = Counter(e["pathname"] for e in hits)
        kinds = Counter((e["label"], e["agent_category"]) for e in hits)
        label, category = min(kinds, key=lambda k: (-kinds[k], LABELS.index(k[0]), k[1] or ""))
        per_bucket = Counter(ref.local_bucket(e["ts"], q.tz, interval) for e in hits)
        views = sum(1 for e in hits if e["name"] == "pageview")
        before = previous[name]
        rows.append(
            {
                "agent": name,
                "value": name,
                "name": name,
                "category": category,
                "label": label,
                "hits": len(hits),
                "pageviews": views,
                "events": len(hits) - views,
                "visitors": len({e["visitor_id"] for e in hits}),
                "pages": len(pages),
                "top_pages": [
                    {"page": p, "hits": n}
                    for p, n in sorted(pages.items(), key=lambda i: (-i[1], i[0]))[:5]
                ],
                "first_seen": iso(min(e["ts"] for e in hits)),
                "last_seen": iso(max(e["ts"] for e in hits)),
                "trend": {
                    "current": len(hits),
                    "previous": before,
                    "change": len(hits) - before,
                    "change_pct": round(100 * (len(hits) - before) / before, 1) if before else None,
                    "series": [{"date": b, "hits": per_bucket[b]} for b in labels],
                },
            }
        )
    rows.sort(key=lambda r: (-r["hits"], r["agent"]))
    return rows


CASES = [
    SPAN,
    {**SPAN, "classification": "agent"},
    {**SPAN, "classification": "all", "page": "/docs|/pricing"},
    {"since": "2024-11-03", "until": "2024-11-03"},  # the 25-hour day in New York
    {**SPAN, "source": "Google", "interval": "week"},
    {"period": "7d"},
    {"since": "2024-12-01", "until": "2024-12-02"},  # nothing there
]


@pytest.mark.parametrize("args", CASES)
def test_agents_match_the_reference(world, args):
    tenant, data = world
    q = parse_query(tenant.site, args, now=NOW, classification=("agent", "bot"), limit=100)
    report = agents.agents(q)
    expected = expected_rows(q, data)
    assert bool(expected) == (args is not CASES[-1])  # every case but the last has agents
    assert report["rows"] == expected
    assert report["agents_seen"] == len(expected)
    assert report["total_hits"] == sum(r["hits"] for r in expected)


def test_the_limit_keeps_the_busiest(world):
    tenant, data = world
    q = parse_query(tenant.site, {**SPAN, "limit": "2"}, now=NOW, classification=("agent", "bot"))
    report = agents.agents(q)
    assert [r["agent"] for r in report["rows"]] == [r["agent"] for r in expected_rows(q, data)][:2]
    assert report["agents_seen"] > 2


def test_one_agent_lists_every_page_it_read(world):
    tenant, data = world
    q = parse_query(tenant.site, SPAN, now=NOW, classification=("agent", "bot"), limit=100)
    for name in ("ClaudeBot", "Googlebot"):
        detail = agents.agent(q, name)
        summary = next(r for r in expected_rows(q, data) if r["agent"] == name)
        assert {k: detail[k] for k in summary} == summary
        hits = [e for e in agent_hits(q, data) if e["agent_name"] == name]
        by_page: dict[str, list[dict]] = defaultdict(list)
        for e in hits:
            by_page[e["pathname"]].append(e)
        expected = sorted(
            (
                {
                    "page": page,
                    "hits": len(found),
                    "pageviews": sum(1 for e in found if e["name"] == "pageview"),
                    "first_seen": iso(min(e["ts"] for e in found)),
                    "last_seen": iso(max(e["ts"] for e in found)),
                }
                for page, found in by_page.items()
            ),
            key=lambda p: (-p["hits"], p["page"]),
        )
        assert detail["pages_read"] == expected
        assert detail["category"] == CATEGORY[name]


def test_an_agent_seen_only_outside_the_range_has_zeros(world):
    tenant, _ = world
    q = parse_query(tenant.site, {"since": "2024-12-01"}, now=datetime(2024, 12, 2, tzinfo=UTC))
    detail = agents.agent(q, "ClaudeBot")
    assert detail["hits"] == 0 and detail["pages_read"] == [] and detail["first_seen"] is None


@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_agents_from_rollups_match_the_reference(app, zone, monkeypatch):
    """Closed days read the agent-page roll-ups, and trends the pieces of `rollup_hits`
    (on a New York site, parts of UTC days too); today and filters read raw hits.
    Same numbers."""
    tenant, data = _world(zone)
    parts = set()
    monkeypatch.setattr(
        rollups,
        "hits_per_piece",
        lambda q, dim, found, names, _f=rollups.hits_per_piece: (
            parts.update(p.part for p in found) or _f(q, dim, found, names)
        ),
    )
    rollups.mark_existing()
    assert rollups.refresh_due(now=NOW) > 0
    assert db.session.query(RollupAgentPage).filter_by(site_id=tenant.site.id).count() > 0
    for args in [*CASES, {"period": "30d", "interval": "week"}, {"period": "7d", "limit": "2"}]:
        q = parse_query(tenant.site, args, now=NOW, classification=("agent", "bot"), limit=100)
        if args is CASES[0]:
            assert rollups.covered(q, layout=AGENT_PAGES_LAYOUT)
        report = agents.agents(q)
        expected = expected_rows(q, data)
        assert report["rows"] == expected[: q.limit], args
        assert report["agents_seen"] == len(expected)
        assert report["total_hits"] == sum(r["hits"] for r in expected)
    q = parse_query(tenant.site, SPAN, now=NOW, classification=("agent",), limit=100)
    for row in expected_rows(q, data):
        detail = agents.agent(q, row["agent"])
        assert {k: detail[k] for k in row} == row
        assert sum(p["hits"] for p in detail["pages_read"]) == row["hits"]
    assert parts == ({WHOLE} if zone == "UTC" else {WHOLE, HEAD, TAIL})


# Over HTTP ---------------------------------------------------------------------------------

QS = "since=2024-10-30&until=2024-11-05"


def test_agents_endpoint_and_its_seed_alias(client, world):
    tenant, data = world
    site = tenant.site
    body = client.get(f"/api/v1/sites/{site.id}/agents?{QS}", headers=bearer(tenant.key))
    assert body.status_code == 200
    payload = body.get_json()["data"]
    q = parse_query(site, SPAN, now=NOW, classification=("agent", "bot"))
    assert payload["rows"] == expected_rows(q, data)  # default limit 100: every agent
    assert payload["query"]["classification"] == ["agent", "bot"]
    row = payload["rows"][0]
    assert set(row) >= {"name", "category", "label", "hits", "pages", "top_pages", "trend"}
    assert set(row["trend"]) == {"current", "previous", "change", "change_pct", "series"}
    seed = client.get(f"/api/v1/agents?site={site.id}&{QS}", headers={"X-API-Key": tenant.key})
    assert seed.get_json() == body.get_json()
    team = f"/api/v1/teams/{tenant.team.slug}/analytics/{site.id}/agents?{QS}"
    assert client.get(team, headers=bearer(tenant.key)).get_json() == body.get_json()


def test_agent_drill_down_endpoint(client, world):
    tenant, _ = world
    site = tenant.site
    url = f"/api/v1/sites/{site.id}/agents/ClaudeBot?{QS}&limit=3"
    detail = client.get(url, headers=bearer(tenant.key))
    assert detail.status_code == 200, detail.get_json()
    data = detail.get_json()["data"]
    assert data["agent"] == "ClaudeBot" and len(data["pages_read"]) <= 3
    seed = client.get(
        f"/api/v1/agents/ClaudeBot?site={site.id}&{QS}&limit=3", headers=bearer(tenant.key)
    )
    assert seed.get_json() == detail.get_json()
    missing = client.get(f"/api/v1/sites/{site.id}/agents/NoSuchBot", headers=bearer(tenant.key))
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"


def test_agents_scope_tenancy_and_bad_input(client, world):
    tenant, _ = world
    other = make_tenant("outsider")
    site = tenant.site
    for path in ("agents", "agents/ClaudeBot"):
        response = client.get(f"/api/v1/sites/{site.id}/{path}", headers=bearer(other.key))
        assert response.status_code == 404, path
        assert response.get_json()["error"] == "not_found"
    no_stats = make_key(tenant.team, tenant.owner, ["sites:read"])
    for path in ("agents", "agents/ClaudeBot"):
        response = client.get(f"/api/v1/sites/{site.id}/{path}", headers=bearer(no_stats))
        assert response.status_code == 403
        assert response.get_json()["required_scope"] == "stats:read"
    for bad, field in (("limit=0", "limit"), ("interval=minute", "interval"), ("range=x", "range")):
        response = client.get(f"/api/v1/sites/{site.id}/agents?{bad}", headers=bearer(tenant.key))
        assert response.status_code == 422, bad
        assert field in response.get_json()["errors"]
