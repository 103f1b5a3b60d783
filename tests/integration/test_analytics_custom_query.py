"""POST /query (seed 002): rows against plain Python, the reports, and input checking."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulse.analytics import breakdowns, custom_query, reports, rollups
from pulse.analytics.query import parse_query
from pulse.errors import ValidationFailed
from pulse.extensions import db
from tests import analytics_reference as ref
from tests import explore_reference as xref
from tests.factories import bearer, make_key, make_site, make_tenant

NOW = datetime(2024, 11, 5, 15, 30, tzinfo=UTC)
SPAN = {"since": "2024-10-29", "until": "2024-11-06"}
HIT_DIMS = ["page", "event", "hostname", "country", "device", "browser", "prop.plan", "utm_term"]
SESSION_DIMS = ["source", "channel", "entry_page", "exit_page", "utm_campaign", "referrer"]
BOTH_DIMS = ["country", "device", "os", "agent", "day", "hour", "week"]
HIT_METRICS = ["visitors", "pageviews", "events", "total_events", "humans", "agent_share"]
VISIT_METRICS = ["sessions", "bounce_rate", "visit_duration", "views_per_visit"]


class World(dict):
    def __repr__(self) -> str:
        return "<world>"


@pytest.fixture
def world(app):
    tenant = make_tenant("query")
    tenant.site.timezone = "America/New_York"
    other = make_site(tenant.team, tenant.owner, "kathmandu.example")
    other.timezone = "Asia/Kathmandu"
    db.session.commit()
    data = {
        "new_york": ref.generate(tenant.site.id, tenant.site.timezone, seed=21),
        "kathmandu": ref.generate(other.id, other.timezone, seed=22),
    }
    rollups.mark_existing()  # stored without the ingest path: no day is rolled up yet
    db.session.commit()
    return World(tenant=tenant, sites={"new_york": tenant.site, "kathmandu": other}, data=data)


@pytest.fixture
def bare(app):
    """A tenant without traffic, for input checks."""
    return make_tenant("bare")


def run(world, zone, spec):
    site = world["sites"][zone]
    result = custom_query.run(site, spec, now=NOW, first_seen=lambda: ref.START)
    args = {k: str(spec[k]) for k in ("since", "until", "period", "classification") if k in spec}
    for f in spec.get("filters", []):
        values = f["value"] if isinstance(f["value"], list) else [f["value"]]
        args[f["field"]] = "|".join(str(v) for v in values)
    q = parse_query(site, args, now=NOW, first_seen=lambda: ref.START)
    return result, q, world["data"][zone]


def expected_rows(q, data, spec):
    group = spec.get("group_by", [])
    return xref.ref_query(
        q,
        data,
        spec.get("metrics", ["visitors"]),
        group if isinstance(group, list) else [group],
        spec.get("order_by"),
        None if spec.get("order") is None else spec["order"] == "desc",
        spec.get("limit", 100),
    )


CASES = [
    {"metrics": ["visitors", "pageviews", "sessions", "bounce_rate", "visit_duration"]},
    {"metrics": HIT_METRICS, "group_by": ["page"]},
    {"metrics": HIT_METRICS, "group_by": ["event", "prop.plan"], "limit": 5},
    {"metrics": ["visitors", *VISIT_METRICS], "group_by": ["country"]},
    {"metrics": ["visitors", "sessions"], "group_by": ["day"], "order_by": "day"},
    {"metrics": ["pageviews", "sessions"], "group_by": ["hour"], "since": "2024-11-03"},
    {"metrics": ["visitors", "pageviews", *VISIT_METRICS], "group_by": ["source", "channel"]},
    {"metrics": ["sessions", "bounce_rate"], "group_by": ["entry_page"], "order_by": "bounce_rate"},
    {"metrics": ["visitors"], "group_by": ["device", "os", "week"], "order": "asc"},
    {"metrics": ["pageviews"], "group_by": "browser", "order_by": "browser", "order": "desc"},
    {"metrics": ["visitors", "agents", "bots"], "group_by": ["agent"], "classification": "all"},
    {
        "metrics": ["visitors", "events"],
        "group_by": ["page"],
        "filters": [{"field": "country", "op": "in", "value": ["US", "DE"]}],
    },
    {
        "metrics": ["visitors", "sessions"],
        "group_by": ["utm_campaign"],
        "filters": [{"field": "prop.plan", "op": "eq", "value": "pro"}],
        "classification": "agent,bot",
    },
    {"metrics": ["visitors"], "group_by": ["page"], "filters": [{"field": "page", "value": "/x"}]},
]


@pytest.mark.parametrize("zone", ["new_york", "kathmandu"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_rows_match_reference(world, zone, case):
    spec = {**SPAN, **CASES[case]}
    if "since" in CASES[case]:
        spec["until"] = CASES[case]["since"]
    result, q, data = run(world, zone, spec)
    assert result["rows"] == expected_rows(q, data, spec)
    group = spec.get("group_by", [])
    assert result["group_by"] == (group if isinstance(group, list) else [group])
    assert result["metrics"] == spec["metrics"]
    for row in result["rows"]:
        assert list(row) == [*result["group_by"], *result["metrics"]]


def test_rows_from_rollups_match_reference(world):
    """With the closed days rolled up, single-field queries may read roll-ups: same rows."""
    assert rollups.refresh_due(now=NOW) > 0
    for zone in ("new_york", "kathmandu"):
        for case in CASES:
            spec = {**SPAN, **case, "classification": case.get("classification", "all")}
            if "since" in case:
                spec["until"] = case["since"]
            result, q, data = run(world, zone, spec)
            assert result["rows"] == expected_rows(q, data, spec), (zone, case)


def test_no_group_by_is_the_overview(world):
    for cls in ("human", "all", "agent"):
        spec = {**SPAN, "classification": cls, "metrics": list(reports.OVERVIEW_METRICS[:9])}
        result, q, _ = run(world, "new_york", spec)
        overview = reports.overview(q)
        assert result["rows"] == [{m: overview[m] for m in spec["metrics"]}]


@pytest.mark.parametrize("dim", ["page", "country", "source", "entry_page", "prop.plan", "agent"])
def test_single_dimension_is_the_breakdown(world, dim):
    session = dim in ("source", "entry_page")
    metrics = ["visitors", "pageviews"] + (["sessions", "bounce_rate"] if session else ["events"])
    spec = {**SPAN, "classification": "all", "metrics": metrics, "group_by": [dim], "limit": 4}
    result, q, _ = run(world, "kathmandu", spec)
    rows = breakdowns.breakdown(q, dim, 4)["rows"]
    assert result["rows"] == [{dim: r["value"], **{m: r[m] for m in metrics}} for r in rows]


def test_empty_range_gives_a_zero_total_and_no_groups(world):
    spec = {"since": "2023-01-01", "until": "2023-01-02", "metrics": ["visitors", "sessions"]}
    result, _, _ = run(world, "new_york", spec)
    assert result["rows"] == [{"visitors": 0, "sessions": 0}]
    result, _, _ = run(world, "new_york", {**spec, "metrics": ["pageviews"], "group_by": ["page"]})
    assert result["rows"] == [] and result["total_rows"] == 0


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    group=st.one_of(
        st.lists(st.sampled_from(HIT_DIMS + ["day"]), max_size=2, unique=True).map(
            lambda g: (g, HIT_METRICS)
        ),
        st.lists(st.sampled_from(BOTH_DIMS), max_size=2, unique=True).map(
            lambda g: (g, ["visitors", *VISIT_METRICS])
        ),
        st.lists(st.sampled_from(SESSION_DIMS + ["country"]), min_size=1, max_size=2, unique=True)
        .filter(lambda g: any(d in SESSION_DIMS for d in g))
        .map(lambda g: (g, ["visitors", "pageviews", *VISIT_METRICS])),
    ),
    cls=st.sampled_from(["human", "all", "agent,bot"]),
    limit=st.integers(1, 8),
    descending=st.sampled_from([None, True, False]),
)
def test_random_queries_match_reference(world, group, cls, limit, descending):
    dims, metrics = group
    spec = {**SPAN, "metrics": metrics, "group_by": dims, "classification": cls, "limit": limit}
    if descending is not None:
        spec["order"] = "desc" if descending else "asc"
    result, q, data = run(world, "new_york", spec)
    assert result["rows"] == expected_rows(q, data, spec)


@pytest.mark.parametrize(
    ("spec", "field", "hint"),
    [
        ({"metrics": ["visitors", "revenue"]}, "metrics", "pageviews"),
        ({"group_by": ["planet"]}, "group_by", "country"),
        ({"group_by": ["a", "b", "c", "d"]}, "group_by", "3"),
        ({"filters": [{"field": "country", "op": "contains", "value": "U"}]}, "filters", "eq"),
        ({"filters": [{"field": "planet", "value": "x"}]}, "filters", "country"),
        ({"filters": [{"field": "country", "value": ["US", "DE"]}]}, "filters", "in"),
        ({"filters": [{"field": "country", "value": "USA"}]}, "filters", "country code"),
        ({"order_by": "revenue"}, "order_by", "visitors"),
        ({"order": "sideways", "order_by": "visitors"}, "order", "asc"),
        ({"metrics": ["events"], "group_by": ["source"]}, "metrics", "hits"),
        ({"metrics": ["sessions"], "group_by": ["page"]}, "metrics", "entry_page"),
        ({"group_by": ["source", "page"]}, "group_by", "page"),
        ({"group_by": ["hour"], "period": "all"}, "group_by", "5000"),
        ({"period": "forever"}, "period", "7d"),
        ({"since": "2024-11-05", "until": "2024-11-01"}, "until", "after"),
    ],
)
def test_bad_queries_name_the_field(bare, spec, field, hint):
    site = bare.site
    with pytest.raises(ValidationFailed) as caught:
        custom_query.run(
            site, {**spec}, now=NOW, first_seen=lambda: datetime(1990, 1, 1, tzinfo=UTC)
        )
    assert field in caught.value.errors, caught.value.errors
    assert hint in " ".join(caught.value.errors[field])


# The API ---------------------------------------------------------------------------


def post(client, url, body, key):
    return client.post(url, json=body, headers=bearer(key))


def test_post_query_on_every_path(client, world):
    tenant, site = world["tenant"], world["sites"]["new_york"]
    body = {**SPAN, "metrics": ["visitors", "sessions"], "group_by": ["country"], "limit": 3}
    canonical = post(client, f"/api/v1/sites/{site.id}/query", body, tenant.key)
    assert canonical.status_code == 200, canonical.get_json()
    data = canonical.get_json()["data"]
    q = parse_query(site, SPAN)
    assert data["rows"] == xref.ref_query(
        q, world["data"]["new_york"], body["metrics"], ["country"], limit=3
    )
    assert data["metrics"] == ["visitors", "sessions"] and data["group_by"] == ["country"]
    assert data["query"]["site_id"] == site.id and data["total_rows"] >= 3
    team = post(
        client, f"/api/v1/teams/{tenant.team.slug}/analytics/{site.id}/query", body, tenant.key
    )
    assert team.get_json() == canonical.get_json()
    seed = post(client, "/api/v1/query", {**body, "project": site.domain}, tenant.key)
    assert seed.status_code == 200 and seed.get_json() == canonical.get_json()
    by_arg = post(client, f"/api/v1/query?site={site.id}", body, tenant.key)
    assert by_arg.get_json() == canonical.get_json()
    aliases = {**SPAN, "metrics": "visitors", "groupBy": "country", "sort": "-visitors", "limit": 3}
    aliased = post(client, f"/api/v1/sites/{site.id}/query", aliases, tenant.key)
    assert aliased.status_code == 200
    assert [r["country"] for r in aliased.get_json()["data"]["rows"]] == [
        r["country"] for r in data["rows"]
    ]


def test_filters_as_an_object(client, world):
    tenant, site = world["tenant"], world["sites"]["kathmandu"]
    body = {
        **SPAN,
        "metrics": ["pageviews"],
        "group_by": ["page"],
        "filters": {"country": ["US", None], "prop.lang": "en"},
    }
    response = post(client, f"/api/v1/sites/{site.id}/query", body, tenant.key)
    assert response.status_code == 200, response.get_json()
    args = {**SPAN, "country": "US|(none)", "prop.lang": "en"}
    q = parse_query(site, args)
    expected = xref.ref_query(q, world["data"]["kathmandu"], ["pageviews"], ["page"])
    assert response.get_json()["data"]["rows"] == expected and expected


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"metrics": ["nope"]}, 422, "metrics"),
        ({"metrics": [1, 2]}, 422, None),
        ({"limit": "10"}, 422, "limit"),
        ({"limit": 0}, 422, "limit"),
        ({"limit": 5000}, 422, "limit"),
        ({"limit": True}, 422, "limit"),
        ({"group_by": {"a": 1}}, 422, None),
        ({"filters": "country=US"}, 422, None),
        ({"filters": [{"field": "country", "op": "like", "value": "U"}]}, 422, "filters"),
        ({"filters": [{"field": "country", "value": {"a": 1}}]}, 422, None),
        ({"colour": "blue"}, 422, "colour"),
        ({"since": "last tuesday"}, 422, "since"),
        ({"classification": "martians"}, 422, "classification"),
    ],
)
def test_bad_bodies_are_422_json(client, bare, body, status, field):
    tenant, site = bare, bare.site
    response = post(client, f"/api/v1/sites/{site.id}/query", body, tenant.key)
    assert response.status_code == status, response.get_json()
    payload = response.get_json()
    assert payload["error"] == "validation_failed"
    if field is not None and field.count(".") == 0:
        assert any(k == field or k.startswith(field + ".") for k in payload["errors"]), payload


def test_unknown_names_list_the_allowed_values(client, world):
    tenant, site = world["tenant"], world["sites"]["new_york"]
    body = {"metrics": ["revenue"], "group_by": ["planet"]}
    errors = post(client, f"/api/v1/sites/{site.id}/query", body, tenant.key).get_json()["errors"]
    assert all(m in errors["metrics"][0] for m in custom_query.METRICS)
    assert "prop.<key>" in errors["group_by"][0] and "entry_page" in errors["group_by"][0]


def test_not_json_bodies_are_client_errors(client, world):
    tenant, site = world["tenant"], world["sites"]["new_york"]
    url = f"/api/v1/sites/{site.id}/query"
    headers = {**bearer(tenant.key), "Content-Type": "application/json"}
    broken = client.post(url, data=b'{"metrics": [', headers=headers)
    assert broken.status_code == 400 and broken.get_json()["error"] == "invalid_json"
    listed = client.post(url, data=b'["visitors"]', headers=headers)
    assert listed.status_code == 422 and listed.is_json
    empty = client.post(url, data=b"", headers=headers)
    assert empty.status_code == 200  # every field has a default: visitors over 24 hours
    assert list(empty.get_json()["data"]["rows"][0]) == ["visitors"]


def test_query_isolation_and_scope(client, world):
    tenant, site = world["tenant"], world["sites"]["new_york"]
    outsider = make_tenant("outsider")
    body = {"metrics": ["visitors"]}
    for url in (
        f"/api/v1/sites/{site.id}/query",
        f"/api/v1/teams/{outsider.team.slug}/analytics/{site.id}/query",
        f"/api/v1/query?site={site.id}",
    ):
        response = post(client, url, body, outsider.key)
        assert response.status_code == 404, url
    assert (
        post(client, "/api/v1/query", {**body, "project": site.site_key}, outsider.key).status_code
        == 404
    )
    no_stats = make_key(tenant.team, tenant.owner, ["sites:read"])
    response = post(client, f"/api/v1/sites/{site.id}/query", body, no_stats)
    assert response.status_code == 403 and response.get_json()["required_scope"] == "stats:read"


def test_openapi_documents_the_body(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/query"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("QueryIn")
    props = doc["components"]["schemas"]["QueryIn"]["properties"]
    assert {"metrics", "group_by", "filters", "order_by", "order", "limit"} <= set(props)
    assert "/api/v1/sites/{site_id}/query" in doc["paths"]
