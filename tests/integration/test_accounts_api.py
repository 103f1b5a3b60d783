"""Sign-up, sign-in, sessions and the account endpoint."""

from __future__ import annotations

from pulse.extensions import db
from pulse.models import AuditLog, User
from tests.factories import PASSWORD, make_tenant, make_user, sign_in


def test_sign_up_signs_in_and_hashes_the_password(client):
    response = client.post(
        "/api/v1/auth/signup",
        json={"email": " Ada@Example.COM ", "password": PASSWORD, "name": "Ada"},
    )
    assert response.status_code == 201
    assert response.get_json()["data"]["email"] == "ada@example.com"
    user = db.session.scalar(db.select(User).where(User.email == "ada@example.com"))
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
    me = client.get("/api/v1/account").get_json()["data"]
    assert me["user"]["email"] == "ada@example.com" and me["auth"] == "session"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_up_rejects_weak_passwords_and_taken_emails(client):
    make_user("taken@example.test")
    weak = client.post("/api/v1/auth/signup", json={"email": "a@example.test", "password": "short"})
    assert weak.status_code == 422 and "password" in weak.get_json()["errors"]
    same = client.post(
        "/api/v1/auth/signup", json={"email": "a@example.test", "password": "a@example.test"}
    )
    assert same.status_code == 422
    taken = client.post(
        "/api/v1/auth/signup", json={"email": "TAKEN@example.test", "password": PASSWORD}
    )
    assert taken.status_code == 409 and taken.get_json()["error"] == "email_taken"
    bad = client.post("/api/v1/auth/signup", json={"email": "not-an-email", "password": PASSWORD})
    assert bad.status_code == 422 and "email" in bad.get_json()["errors"]


def test_sign_in_and_out(client):
    user = make_user("bob@example.test")
    wrong = client.post("/api/v1/auth/login", json={"email": user.email, "password": "nope nope"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_credentials"
    unknown = client.post("/api/v1/auth/login", json={"email": "who@example.test", "password": "x"})
    assert unknown.get_json() == wrong.get_json()
    sign_in(client, user.email)
    assert client.get("/api/v1/account").status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 204
    assert client.get("/api/v1/account").status_code == 401


def test_bumping_the_session_version_signs_out_everywhere(client):
    user = make_user("carol@example.test")
    sign_in(client, user.email)
    assert client.get("/api/v1/account").status_code == 200
    user.session_version += 1
    db.session.commit()
    assert client.get("/api/v1/account").status_code == 401


def test_disabled_accounts_cannot_sign_in(client):
    user = make_user("dave@example.test")
    user.is_active = False
    db.session.commit()
    response = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 401


def test_account_by_api_key_lists_its_team_only(client):
    t = make_tenant("alpha")
    make_tenant("bravo")
    body = client.get("/api/v1/me", headers={"X-API-Key": t.key}).get_json()["data"]
    assert body["auth"] == "api_key" and body["user"] is None
    assert [team["slug"] for team in body["teams"]] == [t.team.slug]
    assert body["api_key"]["prefix"] == t.key[:16]


def test_sign_up_is_audited_without_ip(client):
    client.post(
        "/api/v1/auth/signup",
        json={"email": "e@example.test", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    entry = db.session.scalar(db.select(AuditLog).where(AuditLog.action == "user.signed_up"))
    assert entry is not None
    assert "203.0.113.9" not in str(entry.details)


def test_closed_sign_up(settings):
    from pulse import create_app

    app = create_app({**settings, "SIGNUP_OPEN": False})
    with app.app_context():
        client = app.test_client()
        first = client.post(
            "/api/v1/auth/signup", json={"email": "first@example.test", "password": PASSWORD}
        )
        second = client.post(
            "/api/v1/auth/signup", json={"email": "second@example.test", "password": PASSWORD}
        )
        db.session.remove()
        from tests.conftest import _empty_tables

        _empty_tables()
    assert first.status_code == 201 and second.status_code == 403
