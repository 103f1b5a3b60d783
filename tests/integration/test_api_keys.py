"""API keys: shown once, stored hashed, scoped, rotated with grace, revoked, expiring."""

from __future__ import annotations

from datetime import timedelta

from pulse.extensions import db
from pulse.models import ApiKey, utcnow
from tests.factories import add_member, bearer, make_tenant, make_user, sign_in


def _create(client, key, **body):
    return client.post("/api/v1/api-keys", json={"name": "ci", **body}, headers=bearer(key))


def test_secret_is_shown_once_and_stored_only_as_a_hash(client):
    t = make_tenant("alpha")
    created = _create(client, t.key, scopes=["stats:read"])
    assert created.status_code == 201
    data = created.get_json()["data"]
    secret = data["key"]
    assert secret.startswith("sk_live_") and len(secret) >= 40
    assert data["prefix"] == secret[:16]
    row = db.session.get(ApiKey, data["id"])
    assert secret not in (row.key_hash, row.prefix) and len(row.key_hash) == 64
    for response in (
        client.get(f"/api/v1/api-keys/{data['id']}", headers=bearer(t.key)),
        client.get("/api/v1/api-keys", headers=bearer(t.key)),
    ):
        assert secret not in response.get_data(as_text=True)
        assert "key" not in (
            response.get_json()["data"]
            if isinstance(response.get_json()["data"], dict)
            else response.get_json()["data"][0]
        )


def test_all_three_ways_of_presenting_a_key(client):
    t = make_tenant("alpha")
    assert (
        client.get("/api/v1/teams", headers={"Authorization": f"Bearer {t.key}"}).status_code == 200
    )
    assert client.get("/api/v1/teams", headers={"X-API-Key": t.key}).status_code == 200
    # `?k=` is for the pixel only; elsewhere a key in the URL is not accepted.
    assert client.get(f"/api/v1/teams?k={t.key}").status_code == 401


def test_last_used_at_is_recorded(client):
    t = make_tenant("alpha")
    key_id = db.session.scalar(db.select(ApiKey.id).where(ApiKey.team_id == t.team.id))
    assert db.session.get(ApiKey, key_id).last_used_at is None
    client.get("/api/v1/teams", headers=bearer(t.key))
    db.session.expire_all()
    assert db.session.get(ApiKey, key_id).last_used_at is not None


def test_scopes_are_checked_and_cannot_exceed_the_creator(client):
    t = make_tenant("alpha")
    reader = _create(client, t.key, scopes=["sites:read"]).get_json()["data"]["key"]
    assert client.get("/api/v1/projects", headers=bearer(reader)).status_code == 200
    denied = client.post("/api/v1/projects", json={"name": "x.example"}, headers=bearer(reader))
    assert denied.status_code == 403
    assert denied.get_json()["message"].endswith("Required scope: sites:write")
    unknown = _create(client, t.key, scopes=["sites:read", "root"])
    assert unknown.status_code == 422 and "root" in str(unknown.get_json()["errors"])
    # An admin's key may not hold teams:delete, which admins lack.
    admin = make_user("admin@example.test")
    add_member(t.team, admin, "admin")
    sign_in(client, admin.email)
    response = client.post(
        f"/api/v1/teams/{t.team.slug}/api-keys",
        json={"name": "too much", "scopes": ["teams:delete"]},
    )
    assert response.status_code == 403


def test_workspace_scope_names_are_accepted(client):
    t = make_tenant("alpha")
    data = _create(client, t.key, scopes=["workspaces:read"]).get_json()["data"]
    assert data["scopes"] == ["teams:read"]


def test_rotation_keeps_the_old_key_for_the_grace_period(client):
    t = make_tenant("alpha")
    created = _create(client, t.key, scopes=["teams:read"]).get_json()["data"]
    old = created["key"]
    rotated = client.post(
        f"/api/v1/api-keys/{created['id']}/rotate",
        json={"grace_period_hours": 24},
        headers=bearer(t.key),
    )
    assert rotated.status_code == 200
    body = rotated.get_json()["data"]
    assert body["id"] != created["id"] and body["previous_key_id"] == created["id"]
    assert body["scopes"] == ["teams:read"]
    assert client.get("/api/v1/teams", headers=bearer(old)).status_code == 200
    assert client.get("/api/v1/teams", headers=bearer(body["key"])).status_code == 200
    # After the grace period only the new key works.
    db.session.get(ApiKey, created["id"]).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert client.get("/api/v1/teams", headers=bearer(old)).status_code == 401
    assert client.get("/api/v1/teams", headers=bearer(body["key"])).status_code == 200
    again = client.post(f"/api/v1/api-keys/{created['id']}/rotate", json={}, headers=bearer(t.key))
    assert again.status_code in (404, 422)


def test_rotation_with_no_grace_stops_the_old_key_at_once(client):
    t = make_tenant("alpha")
    created = _create(client, t.key, scopes=["teams:read"]).get_json()["data"]
    client.post(
        f"/api/v1/api-keys/{created['id']}/rotate",
        json={"grace_period_hours": 0},
        headers=bearer(t.key),
    )
    assert client.get("/api/v1/teams", headers=bearer(created["key"])).status_code == 401


def test_revoke_and_expiry(client):
    t = make_tenant("alpha")
    created = _create(client, t.key, scopes=["teams:read"]).get_json()["data"]
    assert (
        client.delete(f"/api/v1/api-keys/{created['id']}", headers=bearer(t.key)).status_code == 204
    )
    assert client.get("/api/v1/teams", headers=bearer(created["key"])).status_code == 401
    assert client.get(f"/api/v1/api-keys/{created['id']}", headers=bearer(t.key)).status_code == 404
    soon = (utcnow() + timedelta(hours=1)).isoformat()
    expiring = _create(client, t.key, scopes=["teams:read"], expires_at=soon).get_json()["data"]
    assert client.get("/api/v1/teams", headers=bearer(expiring["key"])).status_code == 200
    db.session.get(ApiKey, expiring["id"]).expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert client.get("/api/v1/teams", headers=bearer(expiring["key"])).status_code == 401
    past = _create(client, t.key, expires_at=(utcnow() - timedelta(days=1)).isoformat())
    assert past.status_code == 422


def test_key_limited_to_a_site_of_another_team_is_refused(client):
    a, b = make_tenant("alpha"), make_tenant("bravo")
    response = _create(client, a.key, site_id=b.site.id)
    assert response.status_code == 422 and "site_id" in response.get_json()["errors"]
