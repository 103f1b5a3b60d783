"""Element clicks on a page and visitor analytics: numbers, paths, auth and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pulse.analytics import breakdowns, elements, reports
from pulse.analytics.query import parse_query
from pulse.extensions import db
from pulse.ingest import store
from tests import analytics_reference as ref
from tests.factories import bearer, make_key, make_tenant
from tests.integration.test_rollups import _event

SPAN = "since=2024-10-30&until=2024-11-05"
DAY = datetime(2024, 11, 2, 15, tzinfo=UTC)
CLICKS = [  # (visitor, page, selector, label)
    (1, "/pricing", "#buy", "human"),
    (1, "/pricing", "#buy", "human"),
    (2, "/pricing", "#buy", "human"),
    (2, "/pricing", "nav > a.docs", "human"),
    (3, "/pricing", "#buy", "agent"),
    (3, "/pricing", "#faq", "agent"),
    (4, "/docs", "#buy", "human"),
]


@pytest.fixture
def clicks(app):
    tenant = make_tenant("elements")
    rows = []
    for n, (visitor, page, selector, label) in enumerate(CLICKS):
        row = _event(tenant.site.id, DAY + timedelta(minutes=n), f"click-{n}", visitor)
        row.update(
            name="element_click",
            pathname=page,
            label=label,
            agent_name="ChatGPT-User" if label == "agent" else None,
            props={"element_selector": selector, "element_tag": "a", "element_text": "Buy"},
        )
        rows.append(row)
    store.write(rows)
    db.session.commit()
    return tenant


def expected(page: str, labels: set[str]) -> list[tuple[str, int, int]]:
    mine = [c for c in CLICKS if c[1] == page and c[3] in labels]
    selectors = {c[2] for c in mine}
    rows = [
        (s, sum(1 for c in mine if c[2] == s), len({c[0] for c in mine if c[2] == s}))
        for s in selectors
    ]
    return sorted(rows, key=lambda r: (-r[1], r[0]))


@pytest.mark.parametrize("labels", [{"human"}, {"human", "agent", "bot"}, {"agent"}])
def test_element_clicks_match_a_count_by_hand(clicks, labels):
    cls = "all" if len(labels) == 3 else next(iter(labels))
    q = parse_query(
        clicks.site,
        {"since": "2024-11-01", "until": "2024-11-03", "page": "/pricing", "classification": cls},
    )
    result = elements.element_clicks(q)
    got = [(r["selector"], r["clicks"], r["visitors"]) for r in result["elements"]]
    assert got == expected("/pricing", labels)
    assert result["total_clicks"] == sum(r[1] for r in got)
    assert result["page"] == "/pricing"
    assert all(r["tag"] == "a" and r["text"] == "Buy" for r in result["elements"])


def test_element_clicks_limit_keeps_the_total(clicks):
    q = parse_query(
        clicks.site,
        {
            "since": "2024-11-01",
            "until": "2024-11-03",
            "page": "/pricing",
            "limit": "1",
            "classification": "all",
        },
    )
    result = elements.element_clicks(q)
    assert [r["selector"] for r in result["elements"]] == ["#buy"]
    assert result["total_clicks"] == 6
    assert result["elements"][0]["share"] == 66.7  # 4 of the 6 clicks


def test_elements_endpoint_and_seed_alias(client, clicks):
    site = clicks.site
    args = "since=2024-11-01&until=2024-11-03&page=/pricing"
    canonical = client.get(f"/api/v1/sites/{site.id}/elements?{args}", headers=bearer(clicks.key))
    assert canonical.status_code == 200, canonical.get_json()
    alias = client.get(f"/api/v1/elements?site={site.id}&{args}", headers=bearer(clicks.key))
    assert alias.get_json() == canonical.get_json()
    assert canonical.get_json()["data"]["elements"][0]["selector"] == "#buy"


def test_elements_without_a_page_is_a_422(client, clicks):
    response = client.get(
        f"/api/v1/sites/{clicks.site.id}/elements?{SPAN}", headers=bearer(clicks.key)
    )
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] and "page" in body["errors"]


def test_visitors_report_matches_the_other_reports(client, app):
    tenant = make_tenant("visitors")
    tenant.site.timezone = "America/New_York"
    db.session.commit()
    data = ref.generate(tenant.site.id, tenant.site.timezone, seed=5, visits=60)
    q = parse_query(
        tenant.site, {"since": "2024-10-30", "until": "2024-11-05", "classification": "all"}
    )
    result = reports.visitors(q)
    assert result["visitors"] == ref.ref_overview(q, data)["visitors"] > 0
    assert sum(p["visitors"] for p in result["timeseries"]) >= result["visitors"] // 2
    assert [p["date"] for p in result["timeseries"]] == [
        p["date"] for p in ref.ref_timeseries(q, data, "day")
    ]
    assert [p["visitors"] for p in result["timeseries"]] == [
        p["visitors"] for p in ref.ref_timeseries(q, data, "day")
    ]
    assert result["country"] == [
        {"value": r["value"], "visitors": r["visitors"]} for r in breakdowns.countries(q)["rows"]
    ]
    response = client.get(
        f"/api/v1/visitors?site={tenant.site.id}&{SPAN}&classification=all",
        headers=bearer(tenant.key),
    )
    assert response.status_code == 200
    assert response.get_json()["data"]["visitors"] == result["visitors"]


@pytest.mark.parametrize("report", ["elements?page=/", "visitors"])
def test_other_team_404_and_missing_scope_403(client, clicks, report):
    stranger = make_tenant("stranger")
    sep = "&" if "?" in report else "?"
    path = f"/api/v1/sites/{clicks.site.id}/{report}{sep}{SPAN}"
    assert client.get(path, headers=bearer(stranger.key)).status_code == 404
    key = make_key(clicks.team, clicks.owner, scopes=["events:write"])
    assert client.get(path, headers=bearer(key)).status_code == 403
