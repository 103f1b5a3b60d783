"""Every /api/v1 route: another team's ids answer 404; a missing scope answers 403."""

from __future__ import annotations

import pytest

from pulse.accounts import api_keys
from pulse.accounts.actor import Actor
from pulse.accounts.scopes import ALL_SCOPES
from pulse.extensions import db
from pulse.models import ApiKey, Invitation, Site, Team
from pulse.teams import service as teams
from tests.factories import bearer, make_key, make_tenant, sign_in
from tests.integration.api_walk import analytics_values, api_routes


def _values(tenant) -> dict[str, object]:
    """Path values pointing at the tenant's own resources."""
    actor = Actor(user=tenant.owner)
    _, invitation, _ = teams.add_member(actor, tenant.team, "pending@example.test", "viewer")
    key = db.session.scalar(db.select(ApiKey).where(ApiKey.team_id == tenant.team.id))
    db.session.commit()
    return {
        "team": tenant.team.slug,
        "site_id": tenant.site.id,
        "key_id": key.id,
        "user_id": tenant.owner.id,
        "invitation_id": invitation.id,
        **analytics_values(tenant),
    }


def _b_is_intact(b, b_values) -> None:
    db.session.expire_all()
    assert db.session.get(Team, b.team.id).name == b.team.name
    assert db.session.get(Site, b.site.id).name == b.site.name
    assert db.session.get(ApiKey, b_values["key_id"]).revoked_at is None
    assert db.session.get(Invitation, b_values["invitation_id"]) is not None


def _scoped_routes(app):
    return [r for r in api_routes(app, "/api/v1/") if r.arguments]


def test_every_route_with_ids_of_another_team_is_404_by_key(app, client):
    a, b = make_tenant("alpha"), make_tenant("bravo")
    b_values = _values(b)
    routes = _scoped_routes(app)
    assert len(routes) > 20
    for route in routes:
        response = client.open(
            route.path(b_values),
            method=route.method,
            json=route.valid_body(),
            headers=bearer(a.key),
        )
        assert response.status_code == 404, (route.method, route.rule, response.get_json())
        assert response.get_json()["error"] == "not_found"
    _b_is_intact(b, b_values)


def test_every_route_with_ids_of_another_team_is_404_by_session(app, client):
    a, b = make_tenant("alpha"), make_tenant("bravo")
    b_values = _values(b)
    sign_in(client, a.owner.email)
    for route in _scoped_routes(app):
        response = client.open(route.path(b_values), method=route.method, json=route.valid_body())
        assert response.status_code == 404, (route.method, route.rule, response.get_json())
    _b_is_intact(b, b_values)


def test_a_key_limited_to_one_site_sees_no_other_site(client):
    a = make_tenant("alpha")
    from tests.factories import make_site

    other = make_site(a.team, a.owner, "other.example")
    key = make_key(a.team, a.owner, ["sites:read", "sites:write"], site_id=a.site.id)
    assert client.get(f"/api/v1/sites/{a.site.id}", headers=bearer(key)).status_code == 200
    assert client.get(f"/api/v1/sites/{other.id}", headers=bearer(key)).status_code == 404
    listed = client.get(f"/api/v1/teams/{a.team.slug}/sites", headers=bearer(key)).get_json()
    assert [s["id"] for s in listed["data"]] == [a.site.id]


@pytest.mark.parametrize("with_ids", [True, False])
def test_a_key_without_the_scope_gets_403_naming_it(app, client, with_ids):
    a = make_tenant("alpha")
    values = _values(a)
    routes = [
        r for r in api_routes(app, "/api/v1/") if r.op.scope and bool(r.arguments) == with_ids
    ]
    assert routes
    keys: dict[str, str] = {}
    for route in routes:
        scope = route.op.scope
        if scope not in keys:
            keys[scope] = make_key(a.team, a.owner, sorted(ALL_SCOPES - {scope}))
        response = client.open(
            route.path(values),
            method=route.method,
            json=route.valid_body(),
            headers=bearer(keys[scope]),
        )
        body = response.get_json()
        assert response.status_code == 403, (route.method, route.rule, body)
        assert body["error"] == "access_denied"
        assert scope in body["message"]
        assert body["required_scope"] == scope
    # Nothing was changed by the refused calls.
    db.session.expire_all()
    assert db.session.get(Site, a.site.id) is not None
    assert api_keys.get_key(Actor(user=a.owner), values["key_id"]).revoked_at is None
