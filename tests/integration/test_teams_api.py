"""Teams, the workspaces alias, members and roles."""

from __future__ import annotations

from pulse.extensions import db
from pulse.models import Invitation, Membership, Team
from tests.factories import add_member, bearer, make_tenant, make_user, sign_in


def test_team_crud_and_workspace_alias(client):
    user = make_user("owner@example.test")
    sign_in(client, user.email)
    created = client.post("/api/v1/workspaces", json={"name": "Acme Corp", "tier": "pro"})
    assert created.status_code == 201
    team = created.get_json()["data"]
    assert team["slug"] == "acme-corp" and team["tier"] == "pro" and team["role"] == "owner"
    assert created.get_json()["message"] == "Team created successfully."
    for path in ("/api/v1/teams/acme-corp", f"/api/v1/workspaces/{team['id']}"):
        assert client.get(path).get_json()["data"]["id"] == team["id"]
    listed = client.get("/api/v1/teams").get_json()
    assert [t["slug"] for t in listed["data"]] == ["acme-corp"]
    patched = client.patch(
        "/api/v1/teams/acme-corp", json={"name": "Acme", "settings": {"timezone": "Europe/London"}}
    )
    assert patched.get_json()["data"]["settings"]["timezone"] == "Europe/London"
    assert client.delete("/api/v1/teams/acme-corp").status_code == 204
    assert client.get("/api/v1/teams/acme-corp").status_code == 404


def test_slugs_are_unique_and_checked(client):
    user = make_user()
    sign_in(client, user.email)
    assert client.post("/api/v1/teams", json={"name": "Same"}).get_json()["data"]["slug"] == "same"
    assert (
        client.post("/api/v1/teams", json={"name": "Same"}).get_json()["data"]["slug"] == "same-2"
    )
    taken = client.post("/api/v1/teams", json={"name": "X", "slug": "same"})
    assert taken.status_code == 409
    for bad in ("Has Spaces", "-dash", "1234", "api"):
        assert client.post("/api/v1/teams", json={"name": "X", "slug": bad}).status_code == 422


def test_members_add_invite_change_role_remove(client):
    t = make_tenant("alpha")
    existing = make_user("existing@example.test")
    added = client.post(
        f"/api/v1/teams/{t.team.slug}/members",
        json={"email": "Existing@Example.test", "role": "marketing"},
        headers=bearer(t.key),
    )
    assert added.status_code == 201
    assert added.get_json()["data"]["member"]["role"] == "marketing"
    dup = client.post(
        f"/api/v1/teams/{t.team.slug}/members",
        json={"email": existing.email},
        headers=bearer(t.key),
    )
    assert dup.status_code == 409
    invited = client.post(
        f"/api/v1/teams/{t.team.slug}/members",
        json={"email": "new@example.test", "role": "viewer"},
        headers=bearer(t.key),
    )
    assert invited.status_code == 202
    invitation = invited.get_json()["data"]["invitation"]
    assert invitation["invite_url"].startswith("http://localhost/invite/")
    token = invitation["invite_url"].rsplit("/", 1)[1]
    stored = db.session.get(Invitation, invitation["id"])
    assert token not in stored.token_hash
    pending = client.get(f"/api/v1/teams/{t.team.slug}/invitations", headers=bearer(t.key))
    assert [i["email"] for i in pending.get_json()["data"]] == ["new@example.test"]
    assert (
        "invite_url" not in pending.get_data(as_text=True)
        or pending.get_json()["data"][0]["invite_url"] is None
    )
    members = client.get(f"/api/v1/teams/{t.team.slug}/members", headers=bearer(t.key))
    assert {m["email"] for m in members.get_json()["data"]} == {t.owner.email, existing.email}
    changed = client.patch(
        f"/api/v1/teams/{t.team.slug}/members/{existing.id}",
        json={"role": "admin"},
        headers=bearer(t.key),
    )
    assert changed.get_json()["data"]["role"] == "admin"
    removed = client.delete(
        f"/api/v1/teams/{t.team.slug}/members/{existing.id}", headers=bearer(t.key)
    )
    assert removed.status_code == 204
    assert (
        db.session.scalar(
            db.select(Membership).where(
                Membership.user_id == existing.id, Membership.team_id == t.team.id
            )
        )
        is None
    )


def test_invitation_is_accepted_by_the_link(client):
    from pulse.teams.service import accept_invitation

    t = make_tenant("alpha")
    invited = client.post(
        f"/api/v1/teams/{t.team.slug}/members",
        json={"email": "late@example.test", "role": "member"},
        headers=bearer(t.key),
    ).get_json()["data"]["invitation"]
    token = invited["invite_url"].rsplit("/", 1)[1]
    late = make_user("late@example.test")
    team = accept_invitation(late, token)
    db.session.commit()
    assert team.id == t.team.id
    sign_in(client, late.email)
    assert client.get(f"/api/v1/teams/{t.team.slug}").get_json()["data"]["role"] == "member"


def test_the_last_owner_cannot_leave_or_be_demoted(client):
    t = make_tenant("alpha")
    sign_in(client, t.owner.email)
    demote = client.patch(
        f"/api/v1/teams/{t.team.slug}/members/{t.owner.id}", json={"role": "admin"}
    )
    assert demote.status_code == 409 and demote.get_json()["error"] == "last_owner"
    leave = client.delete(f"/api/v1/teams/{t.team.slug}/members/{t.owner.id}")
    assert leave.status_code == 409


def test_roles_decide_what_a_member_may_do(client):
    t = make_tenant("alpha")
    people = {}
    for role in ("admin", "member", "marketing", "viewer"):
        people[role] = make_user(f"{role}@example.test")
        add_member(t.team, people[role], role)
    expectations = {
        # role: (create site, invite member, create key, rename team, delete team)
        "admin": (201, 202, 201, 200, 403),
        "member": (201, 403, 403, 403, 403),
        "marketing": (403, 403, 403, 403, 403),
        "viewer": (403, 403, 403, 403, 403),
    }
    for role, expected in expectations.items():
        client.post("/api/v1/auth/logout")
        sign_in(client, people[role].email)
        slug = t.team.slug
        got = (
            client.post(
                f"/api/v1/teams/{slug}/sites",
                json={"name": f"{role}.example", "domain": f"{role}.example"},
            ).status_code,
            client.post(
                f"/api/v1/teams/{slug}/members", json={"email": f"{role}-friend@example.test"}
            ).status_code,
            client.post(
                f"/api/v1/teams/{slug}/api-keys", json={"name": "k", "scopes": ["stats:read"]}
            ).status_code,
            client.patch(f"/api/v1/teams/{slug}", json={"name": "Renamed"}).status_code,
            client.delete(f"/api/v1/teams/{slug}").status_code,
        )
        assert got == expected, role
        # Everyone can read.
        assert client.get(f"/api/v1/teams/{slug}/sites").status_code == 200
    # Only an owner makes owners.
    client.post("/api/v1/auth/logout")
    sign_in(client, people["admin"].email)
    promote = client.patch(
        f"/api/v1/teams/{t.team.slug}/members/{people['viewer'].id}", json={"role": "owner"}
    )
    assert promote.status_code == 403
    assert db.session.get(Team, t.team.id) is not None


def test_a_member_can_leave_a_team(client):
    t = make_tenant("alpha")
    viewer = make_user("viewer@example.test")
    add_member(t.team, viewer, "viewer")
    sign_in(client, viewer.email)
    assert client.delete(f"/api/v1/teams/{t.team.slug}/members/{viewer.id}").status_code == 204
    assert client.get(f"/api/v1/teams/{t.team.slug}").status_code == 404


def test_deleting_a_team_deletes_its_sites_keys_and_invitations(client):
    from pulse.models import ApiKey, Site

    t = make_tenant("alpha")
    client.post(
        f"/api/v1/teams/{t.team.slug}/members",
        json={"email": "inv@example.test"},
        headers=bearer(t.key),
    )
    sign_in(client, t.owner.email)
    assert client.delete(f"/api/v1/teams/{t.team.slug}").status_code == 204
    db.session.expire_all()
    for model in (Site, ApiKey, Invitation, Membership):
        assert (
            db.session.scalar(
                db.select(db.func.count()).select_from(model).where(model.team_id == t.team.id)
            )
            == 0
        ), model.__name__
