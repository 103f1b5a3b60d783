"""Seed 004 conventions: pagination, sort, fields, dates, idempotency, ids, CORS, CSRF."""

from __future__ import annotations

from datetime import timedelta

from pulse.extensions import db
from pulse.models import AuditLog, Site, utcnow
from tests.factories import bearer, make_site, make_tenant, sign_in


def _sites(tenant, n):
    return [make_site(tenant.team, tenant.owner, f"s{i:02d}.example") for i in range(n)]


def test_pagination_meta_and_links(client):
    t = make_tenant("alpha")
    _sites(t, 29)  # 30 with the tenant's own
    body = client.get(
        f"/api/v1/teams/{t.team.slug}/sites?per_page=7&page=2", headers=bearer(t.key)
    ).get_json()
    assert body["meta"] == {
        "current_page": 2,
        "from": 8,
        "last_page": 5,
        "per_page": 7,
        "to": 14,
        "total": 30,
    }
    assert len(body["data"]) == 7
    assert body["links"]["prev"].endswith("page=1")
    assert "page=3" in body["links"]["next"] and "per_page=7" in body["links"]["next"]
    assert body["links"]["first"].startswith("http://localhost/api/v1/teams/")
    last = client.get(body["links"]["last"], headers=bearer(t.key)).get_json()
    assert last["links"]["next"] is None and len(last["data"]) == 2


def test_per_page_is_capped_at_100(client):
    t = make_tenant("alpha")
    body = client.get("/api/v1/projects?per_page=500", headers=bearer(t.key)).get_json()
    assert body["meta"]["per_page"] == 100


def test_sort_ascending_descending_and_unknown(client):
    t = make_tenant("alpha")
    _sites(t, 3)

    def names(q):
        return [
            s["domain"]
            for s in client.get(f"/api/v1/projects?sort={q}", headers=bearer(t.key)).get_json()[
                "data"
            ]
        ]

    assert names("domain") == sorted(names("domain"))
    assert names("-domain") == sorted(names("domain"), reverse=True)
    response = client.get("/api/v1/projects?sort=password_hash", headers=bearer(t.key))
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_sort"


def test_created_after_and_before(client):
    t = make_tenant("alpha")
    old = make_site(t.team, t.owner, "old.example")
    old.created_at = utcnow() - timedelta(days=10)
    db.session.commit()
    cutoff = (utcnow() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    recent = client.get(f"/api/v1/projects?created_after={cutoff}", headers=bearer(t.key))
    assert "old.example" not in [s["domain"] for s in recent.get_json()["data"]]
    before = client.get(f"/api/v1/projects?created_before={cutoff}", headers=bearer(t.key))
    assert [s["domain"] for s in before.get_json()["data"]] == ["old.example"]
    bad = client.get("/api/v1/projects?created_after=yesterday", headers=bearer(t.key))
    assert bad.status_code == 400 and bad.get_json()["errors"]["created_after"]


def test_fields_selection_on_lists_and_objects(client):
    t = make_tenant("alpha")
    listed = client.get("/api/v1/projects?fields=id,domain", headers=bearer(t.key)).get_json()
    assert listed["data"] == [{"id": t.site.id, "domain": "alpha.example"}]
    one = client.get(f"/api/v1/sites/{t.site.id}?fields=name", headers=bearer(t.key)).get_json()
    assert one["data"] == {"name": "alpha.example"}
    bad = client.get("/api/v1/projects?fields=secret", headers=bearer(t.key))
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_fields"


def test_idempotency_key_replays_the_first_response(client):
    t = make_tenant("alpha")
    headers = {**bearer(t.key), "Idempotency-Key": "3f1c9a6e-0000-4000-8000-000000000001"}
    first = client.post(
        f"/api/v1/teams/{t.team.slug}/sites",
        headers=headers,
        json={"name": "Shop", "domain": "shop.example"},
    )
    again = client.post(
        f"/api/v1/teams/{t.team.slug}/sites",
        headers=headers,
        json={"name": "Shop", "domain": "shop.example"},
    )
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (
        db.session.scalar(
            db.select(db.func.count()).select_from(Site).where(Site.domain == "shop.example")
        )
        == 1
    )
    other = client.post(
        f"/api/v1/teams/{t.team.slug}/sites",
        headers=headers,
        json={"name": "Other", "domain": "other.example"},
    )
    assert other.status_code == 422
    assert other.get_json()["error"] == "idempotency_key_reused"


def test_idempotency_keys_are_per_caller_and_expire(app, client):
    a, b = make_tenant("alpha"), make_tenant("bravo")
    key = {"Idempotency-Key": "shared-key-123"}
    ra = client.post("/api/v1/teams", headers={**bearer(a.key), **key}, json={"name": "X1"})
    rb = client.post("/api/v1/teams", headers={**bearer(b.key), **key}, json={"name": "X1"})
    assert ra.status_code == rb.status_code == 201
    assert ra.get_json()["data"]["id"] != rb.get_json()["data"]["id"]
    from pulse.api import idempotency

    assert idempotency.prune(utcnow() + timedelta(hours=25)) == 2


def test_a_failed_request_does_not_consume_the_idempotency_key(client):
    t = make_tenant("alpha")
    headers = {**bearer(t.key), "Idempotency-Key": "retry-after-fix"}
    bad = client.post("/api/v1/teams", headers=headers, json={"name": ""})
    assert bad.status_code == 422
    # Same key, same (bad) body: the stored 422 comes back.
    assert client.post("/api/v1/teams", headers=headers, json={"name": ""}).status_code == 422


def test_request_id_is_echoed_or_generated(client):
    assert client.get("/api/health").headers["X-Request-ID"].startswith("req_")
    given = client.get("/api/health", headers={"X-Request-ID": "abc-123-def-456"})
    assert given.headers["X-Request-ID"] == "abc-123-def-456"
    junk = client.get("/api/health", headers={"X-Request-ID": "<script>"})
    assert junk.headers["X-Request-ID"].startswith("req_")
    err = client.get("/api/v1/teams")
    assert err.status_code == 401 and err.headers["X-Request-ID"]


def test_cors_preflight_and_headers(client):
    pre = client.options(
        "/api/v1/teams",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"},
    )
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
    assert "Idempotency-Key" in pre.headers["Access-Control-Allow-Headers"]
    assert "Access-Control-Allow-Credentials" not in pre.headers
    got = client.get("/api/health")
    assert "X-Request-ID" in got.headers["Access-Control-Expose-Headers"]


def test_session_csrf_origin_rule(client):
    t = make_tenant("alpha")
    sign_in(client, t.owner.email)
    cross = client.post(
        "/api/v1/teams", json={"name": "Evil"}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status_code == 403 and cross.get_json()["error"] == "forbidden"
    same = client.post(
        "/api/v1/teams", json={"name": "Mine"}, headers={"Origin": "http://localhost"}
    )
    assert same.status_code == 201
    none = client.post("/api/v1/teams", json={"name": "Server"})
    assert none.status_code == 201
    # API keys are not cookies: no Origin rule for them.
    keyed = client.post(
        "/api/v1/teams",
        json={"name": "Keyed"},
        headers={**bearer(t.key), "Origin": "https://elsewhere.example"},
    )
    assert keyed.status_code == 201


def test_errors_have_the_seed_shape(client):
    t = make_tenant("alpha")
    for response, status, code in (
        (client.get("/api/v1/nowhere"), 404, "not_found"),
        (client.delete("/api/v1/teams"), 405, "method_not_allowed"),
        (client.get("/api/v1/teams"), 401, "unauthorized"),
        (
            client.post("/api/v1/teams", json={"name": ""}, headers=bearer(t.key)),
            422,
            "validation_failed",
        ),
        (
            client.post(
                "/api/v1/teams", json={"name": "A", "slug": t.team.slug}, headers=bearer(t.key)
            ),
            409,
            "slug_taken",
        ),
    ):
        body = response.get_json()
        assert response.status_code == status
        assert body["error"] == code and body["message"]
    invalid = client.post("/api/v1/teams", json={"name": "", "extra": 1}, headers=bearer(t.key))
    assert set(invalid.get_json()["errors"]) == {"name", "extra"}


def test_mutations_are_audited(client):
    t = make_tenant("alpha")
    client.patch(f"/api/v1/sites/{t.site.id}", json={"name": "Renamed"}, headers=bearer(t.key))
    actions = [
        a.action
        for a in db.session.scalars(
            db.select(AuditLog).where(AuditLog.team_id == t.team.id).order_by(AuditLog.id)
        )
    ]
    assert actions[-1] == "site.updated"
    log = client.get(f"/api/v1/teams/{t.team.slug}/audit-log", headers=bearer(t.key)).get_json()
    assert log["data"][0]["action"] == "site.updated"
    assert log["data"][0]["actor_api_key_id"] is not None
