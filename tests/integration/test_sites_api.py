"""Sites, with the seed 002 projects alias and the team-scoped seed 000 paths."""

from __future__ import annotations

from tests.factories import bearer, make_tenant, make_user, sign_in


def test_site_crud(client):
    t = make_tenant("alpha")
    created = client.post(
        f"/api/v1/teams/{t.team.slug}/sites",
        headers=bearer(t.key),
        json={
            "name": "Shop",
            "domain": "https://Shop.Example.com/path",
            "allowed_origins": ["https://shop.example.com", "http://localhost:3000/"],
            "timezone": "Europe/Paris",
        },
    )
    assert created.status_code == 201
    site = created.get_json()["data"]
    assert site["domain"] == "shop.example.com"
    assert site["allowed_origins"] == ["http://localhost:3000", "https://shop.example.com"]
    assert site["site_key"].startswith("ps_") and site["project_token"] == site["site_key"]
    assert f'data-site="{site["site_key"]}"' in site["tracking_snippet"]
    assert site["team"] == t.team.slug
    for path in (
        f"/api/v1/sites/{site['id']}",
        f"/api/v1/projects/{site['id']}",
        f"/api/v1/teams/{t.team.slug}/sites/{site['id']}",
    ):
        assert client.get(path, headers=bearer(t.key)).get_json()["data"]["id"] == site["id"]
    patched = client.patch(
        f"/api/v1/projects/{site['id']}",
        headers=bearer(t.key),
        json={"timezone": "America/New_York", "allowed_origins": []},
    )
    assert patched.get_json()["data"]["timezone"] == "America/New_York"
    assert patched.get_json()["data"]["allowed_origins"] == []
    assert client.delete(f"/api/v1/sites/{site['id']}", headers=bearer(t.key)).status_code == 204
    assert client.get(f"/api/v1/sites/{site['id']}", headers=bearer(t.key)).status_code == 404


def test_site_validation(client):
    t = make_tenant("alpha")
    url = f"/api/v1/teams/{t.team.slug}/sites"
    cases = [
        ({"name": "x", "domain": "not a domain"}, "domain"),
        ({"name": "x", "domain": "ok.example", "timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "x", "domain": "ok.example", "allowed_origins": ["ftp://x"]}, "allowed_origins"),
        ({"name": "no domain here"}, "domain"),
    ]
    for body, field in cases:
        response = client.post(url, json=body, headers=bearer(t.key))
        assert response.status_code == 422, body
        assert field in response.get_json()["errors"], body
    dup = client.post(url, json={"name": "again", "domain": "alpha.example"}, headers=bearer(t.key))
    assert dup.status_code == 409 and dup.get_json()["error"] == "site_exists"


def test_projects_alias_reports_existing(client):
    t = make_tenant("alpha")
    new = client.post("/api/v1/projects", json={"name": "blog.example"}, headers=bearer(t.key))
    assert new.status_code == 201 and new.get_json()["existing"] is False
    same = client.post("/api/v1/projects", json={"name": "blog.example"}, headers=bearer(t.key))
    assert same.status_code == 200 and same.get_json()["existing"] is True
    assert same.get_json()["data"]["id"] == new.get_json()["data"]["id"]
    listed = client.get("/api/v1/projects", headers=bearer(t.key)).get_json()
    assert {p["domain"] for p in listed["data"]} == {"alpha.example", "blog.example"}


def test_a_person_in_two_teams_must_say_which(client):
    t = make_tenant("alpha")
    sign_in(client, t.owner.email)
    client.post("/api/v1/teams", json={"name": "Second"})
    ambiguous = client.post("/api/v1/projects", json={"name": "x.example"})
    assert ambiguous.status_code == 400 and ambiguous.get_json()["error"] == "team_required"
    chosen = client.post("/api/v1/projects", json={"name": "x.example", "team": "second"})
    assert chosen.status_code == 201 and chosen.get_json()["data"]["team"] == "second"
    header = client.post(
        "/api/v1/projects", json={"name": "y.example"}, headers={"X-Workspace-ID": t.team.slug}
    )
    assert header.get_json()["data"]["team"] == t.team.slug


def test_outsider_cannot_create_sites_in_a_team(client):
    t = make_tenant("alpha")
    outsider = make_user("outsider@example.test")
    sign_in(client, outsider.email)
    response = client.post(
        f"/api/v1/teams/{t.team.slug}/sites", json={"name": "x", "domain": "x.example"}
    )
    assert response.status_code == 404
