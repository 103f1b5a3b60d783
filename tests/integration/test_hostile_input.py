"""Hostile input on every API endpoint: a 4xx JSON error, never a 500."""

from __future__ import annotations

import json

import pytest

from pulse.accounts.actor import Actor
from pulse.extensions import db
from pulse.models import ApiKey, Site, Team
from pulse.teams import service as teams
from tests.factories import bearer, make_tenant
from tests.integration.api_walk import analytics_values, api_routes

HUGE = "a" * 1_000_000
HOSTILE_BODIES: list[tuple[str, bytes]] = [
    ("malformed", b'{"name": '),
    ("invalid-utf8", b'{"name": "\xff\xfe\xfa"}'),
    ("not-an-object", b"[1, 2, 3]"),
    ("scalar", b"42"),
    ("null", b"null"),
    ("deep", b"[" * 5000 + b"]" * 5000),
    (
        "wrong-types",
        json.dumps(
            {
                "name": 123,
                "domain": [],
                "scopes": "x",
                "role": {},
                "email": 5,
                "password": None,
                "grace_period_hours": "abc",
                "allowed_origins": "https://x",
                "tier": 7,
                "settings": "none",
                "site_id": "one",
                "expires_at": "tomorrow",
                "slug": ["a"],
            }
        ).encode(),
    ),
    ("huge-string", json.dumps({"name": HUGE, "email": HUGE, "domain": HUGE}).encode()),
    ("over-limit", b'{"name": "' + b"b" * 1_100_000 + b'"}'),
    ("unknown-fields", b'{"zzz": 1, "name": "ok", "__proto__": {"admin": true}}'),
    (
        "sql",
        json.dumps(
            {
                "name": "'; DROP TABLE users; --",
                "email": "a'--@x.io",
                "domain": "x.com' OR 1=1",
                "slug": "a' OR '1'='1",
                "role": "admin' --",
                "password": "' OR 1=1 --",
                "allowed_origins": ["https://x.com'; --"],
                "timezone": "UTC'; --",
            }
        ).encode(),
    ),
    ("nul", json.dumps({"name": "a\u0000b", "email": "a\u0000@x.io", "slug": "a\u0000"}).encode()),
    ("huge-numbers", json.dumps({"grace_period_hours": 10**30, "site_id": -(10**20)}).encode()),
    ("many-scopes", json.dumps({"name": "k", "scopes": ["x"] * 10_000}).encode()),
    (
        "many-origins",
        json.dumps({"name": "n", "allowed_origins": ["https://a.b"] * 10_000}).encode(),
    ),
]
HOSTILE_QUERIES = [
    "page=-1",
    "page=abc",
    "per_page=0",
    "per_page=99999999999999999999",
    "sort=;drop",
    "sort=-password_hash",
    "created_after=notadate",
    "created_before=2026-13-45",
    "fields=password_hash",
    "team=%00",
    "page=%ff%fe",
    "fields=" + "x," * 5000,
]


def assert_json_error_or_success(response, context) -> None:
    assert response.status_code < 500, (context, response.status_code, response.data[:300])
    if response.status_code >= 400:
        body = response.get_json()
        assert isinstance(body, dict), (context, response.data[:200])
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), (
            context,
            body,
        )


@pytest.fixture
def settings(settings):
    """The cron endpoint is configured, so the walk reaches its checks."""
    return {**settings, "CRON_SECRET": "cron-secret-for-tests"}


@pytest.fixture
def tenant_values(app):
    tenant = make_tenant("alpha")
    _, invitation, _ = teams.add_member(Actor(user=tenant.owner), tenant.team, "p@x.io", "viewer")
    db.session.commit()
    key = db.session.scalar(db.select(ApiKey).where(ApiKey.team_id == tenant.team.id))
    values = {
        "team": tenant.team.slug,
        "site_id": tenant.site.id,
        "key_id": key.id,
        "user_id": tenant.owner.id,
        "invitation_id": invitation.id,
        **analytics_values(tenant),
    }
    return tenant, values


def test_hostile_bodies_on_every_endpoint(app, client, tenant_values):
    tenant, values = tenant_values
    routes = [
        r
        for r in api_routes(app, ("/api/", "/track/"))
        if r.method in ("POST", "PUT", "PATCH", "DELETE")
    ]
    assert len(routes) > 15
    for route in routes:
        for label, body in HOSTILE_BODIES:
            response = client.open(
                route.path(values),
                method=route.method,
                data=body,
                content_type="application/json",
                headers=bearer(tenant.key),
            )
            assert_json_error_or_success(response, (route.method, route.rule, label))
            if label == "over-limit" and route.op.body is not None:
                assert response.status_code == 413
            elif label in ("malformed", "invalid-utf8", "deep") and route.op.body is not None:
                assert response.status_code in (400, 404), (route.rule, label)


def test_hostile_query_strings_on_every_endpoint(app, client, tenant_values):
    tenant, values = tenant_values
    for route in api_routes(app):
        if route.method != "GET":
            continue
        for query in HOSTILE_QUERIES:
            response = client.get(f"{route.path(values)}?{query}", headers=bearer(tenant.key))
            assert_json_error_or_success(response, (route.rule, query))


def test_hostile_path_values(client, tenant_values):
    tenant, _ = tenant_values
    for path, status, code in (
        ("/api/v1/sites/99999999999999999999", 404, "not_found"),
        ("/api/v1/sites/0", 404, "not_found"),
        ("/api/v1/sites/-1", 404, "not_found"),
        ("/api/v1/teams/%00", 400, "invalid_parameter"),
        ("/api/v1/teams/" + "x" * 5000, 404, "not_found"),
        ("/api/v1/teams/%ff%fe/sites", 404, "not_found"),
        ("/api/v1/api-keys/2147483648", 404, "not_found"),
        ("/api/v1/teams/alpha/members/abc", 404, "not_found"),
    ):
        response = client.get(path, headers=bearer(tenant.key))
        assert response.status_code == status, path
        assert response.get_json()["error"] == code


def test_bad_credentials_are_401_json(client):
    for headers in (
        {"Authorization": "Bearer sk_live_nope"},
        {"X-API-Key": "\u00ff" * 300},
        {"Authorization": "Bearer " + "x" * 10_000},
        {"Authorization": "Basic Zm9vOmJhcg=="},
    ):
        response = client.get("/api/v1/teams", headers=headers)
        assert response.status_code == 401, headers
        assert response.get_json()["error"] == "unauthorized"


def test_a_valid_request_after_hostile_ones_still_works(client, tenant_values):
    tenant, _ = tenant_values
    for _, body in HOSTILE_BODIES[:6]:
        client.post(
            "/api/v1/teams", data=body, content_type="application/json", headers=bearer(tenant.key)
        )
    response = client.post("/api/v1/teams", json={"name": "Fine"}, headers=bearer(tenant.key))
    assert response.status_code == 201
    assert db.session.scalar(db.select(Team).where(Team.name == "Fine")) is not None
    assert db.session.get(Site, tenant.site.id) is not None
