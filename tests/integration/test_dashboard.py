"""The htmx dashboard through the Flask test client: forms, partials, permissions, tenancy."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from pulse.accounts import api_keys
from pulse.extensions import db
from pulse.models import ApiKey, Invitation, Membership, Site, Team, User, utcnow
from tests.factories import (
    PASSWORD,
    add_member,
    make_key,
    make_site,
    make_team,
    make_tenant,
    make_user,
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = re.compile(r"sk_live_[A-Za-z0-9_-]{20,}")
INVITE_LINK = re.compile(r"http://localhost/invite/([A-Za-z0-9_-]+)")
HTMX = {"HX-Request": "true"}


@pytest.fixture
def rate_limited() -> bool:
    """Ask for this fixture to run a test with rate limits on (fresh in-memory counters)."""
    return True


@pytest.fixture
def signup_closed() -> bool:
    """Ask for this fixture to run a test with SIGNUP_OPEN off."""
    return True


@pytest.fixture
def settings(settings: dict[str, object], request: pytest.FixtureRequest) -> dict[str, object]:
    if "rate_limited" in request.fixturenames:
        settings.update(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    if "signup_closed" in request.fixturenames:
        settings["SIGNUP_OPEN"] = False
    return settings


class Browser:
    """A test client that fills in the CSRF token the way a page's form would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token: str | None = None

    def get(self, path: str, htmx: bool = False, **kwargs) -> TestResponse:
        response = self.client.get(path, headers=HTMX if htmx else None, **kwargs)
        found = CSRF.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(self, path: str, data: dict | None = None, htmx: bool = False) -> TestResponse:
        if self.token is None:
            self.get("/signin")
        form = {"csrf_token": self.token, **(data or {})}
        return self.client.post(path, data=form, headers=HTMX if htmx else None)

    def sign_in(self, email: str, password: str = PASSWORD) -> TestResponse:
        response = self.post("/signin", {"email": email, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)
        return response


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def is_partial(response: TestResponse) -> bool:
    body = text(response).lstrip().lower()
    return not body.startswith("<!doctype") and "<html" not in body and "<body" not in body


@pytest.fixture
def browser(client: FlaskClient) -> Browser:
    return Browser(client)


@pytest.fixture
def owner(app: Flask) -> User:
    return make_user("owner@example.test", "Olivia Owner")


@pytest.fixture
def team(owner: User) -> Team:
    return make_team(owner, "Acme Marketing")


@pytest.fixture
def signed_in(browser: Browser, owner: User, team: Team) -> Browser:
    browser.sign_in(owner.email)
    return browser


# Accounts --------------------------------------------------------------------------


def test_sign_up_then_sign_out_and_in_through_the_forms(app: Flask, browser: Browser) -> None:
    page = browser.get("/signup")
    body = text(page)
    assert page.status_code == 200
    assert '<meta name="csrf-token"' in body
    assert "/static/vendor/htmx.min.js" in body
    assert "X-CSRFToken" in body
    assert '<label for="email">' in body

    response = browser.post(
        "/signup", {"name": "Sam", "email": "Sam@Example.test", "password": PASSWORD}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    user = db.session.scalar(select(User).where(User.email == "sam@example.test"))
    assert user is not None and user.name == "Sam"

    home = browser.get("/")
    assert home.status_code == 200
    assert "Create your first team" in text(home)
    assert "sam@example.test" in text(home)

    out = browser.post("/signout")
    assert out.status_code == 303
    assert browser.get("/").headers["Location"].endswith("/signin")

    wrong = browser.post("/signin", {"email": "sam@example.test", "password": "not it at all"})
    assert wrong.status_code == 401
    assert "Wrong email or password." in text(wrong)
    assert PASSWORD not in text(wrong)

    browser.sign_in("sam@example.test")
    assert "Create your first team" in text(browser.get("/"))


def test_sign_up_rejects_weak_password_and_taken_email(app: Flask, browser: Browser) -> None:
    make_user("taken@example.test")
    weak = browser.post("/signup", {"email": "new@example.test", "password": "short"})
    assert weak.status_code == 422
    assert "at least 10 characters" in text(weak)
    assert 'aria-invalid="true"' in text(weak)

    taken = browser.post("/signup", {"email": "taken@example.test", "password": PASSWORD})
    assert taken.status_code == 409
    assert "already exists" in text(taken)

    bad = browser.post("/signup", {"email": "not-an-email", "password": PASSWORD})
    assert bad.status_code == 422


def test_sign_in_follows_only_local_next(app: Flask, browser: Browser, owner: User) -> None:
    protected = browser.get("/teams")
    assert protected.status_code == 302
    assert "/signin?next=%2Fteams" in protected.headers["Location"]

    form = browser.get("/signin?next=/teams")
    assert 'name="next" value="/teams"' in text(form)
    ok = browser.post("/signin", {"email": owner.email, "password": PASSWORD, "next": "/teams"})
    assert ok.headers["Location"] == "/teams"

    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        browser.post("/signout")
        response = browser.post(
            "/signin", {"email": owner.email, "password": PASSWORD, "next": evil}
        )
        assert response.status_code == 303
        assert response.headers["Location"] == "/", evil


def test_a_post_without_csrf_token_is_rejected(app: Flask, client: FlaskClient) -> None:
    make_user("victim@example.test")
    response = client.post("/signin", data={"email": "victim@example.test", "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in text(response)

    browser = Browser(client)
    browser.sign_in("victim@example.test")
    forged = client.post("/teams", data={"name": "Forged"})
    assert forged.status_code == 400
    assert db.session.scalar(select(Team).where(Team.name == "Forged")) is None
    # The token travels in a header for htmx requests (hx-headers on <body>).
    by_header = client.post(
        "/teams", data={"name": "Real"}, headers={**HTMX, "X-CSRFToken": browser.token}
    )
    assert by_header.status_code == 204
    assert by_header.headers["HX-Redirect"].startswith("/t/real/")


def test_sign_in_is_rate_limited_per_account(
    app: Flask, browser: Browser, owner: User, rate_limited: bool
) -> None:
    statuses = [
        browser.post("/signin", {"email": owner.email, "password": "wrong password!"}).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    # The right password does not get through either while the account's bucket is full.
    blocked = browser.post("/signin", {"email": owner.email, "password": PASSWORD})
    assert blocked.status_code == 429
    assert browser.get("/signin").status_code == 200  # only POST is limited


def test_sign_in_is_rate_limited_per_ip(app: Flask, browser: Browser, rate_limited: bool) -> None:
    statuses = [
        browser.post(
            "/signin", {"email": f"nobody{n}@example.test", "password": "x" * 12}
        ).status_code
        for n in range(21)
    ]
    assert statuses[:20] == [401] * 20
    assert statuses[20] == 429


def test_closed_sign_up_admits_only_the_first_account_and_invitees(
    app: Flask, client: FlaskClient, signup_closed: bool
) -> None:
    first = Browser(client)
    assert (
        first.post("/signup", {"email": "first@example.test", "password": PASSWORD}).status_code
        == 303
    )
    first.post("/teams", {"name": "Closed Co"})
    invited = first.post("/t/closed-co/members", {"email": "guest@example.test", "role": "viewer"})
    token = INVITE_LINK.search(text(invited)).group(1)
    first.post("/signout")

    closed = first.get("/signup")
    assert closed.status_code == 403
    assert "Sign-up is closed" in text(closed)
    refused = first.post("/signup", {"email": "other@example.test", "password": PASSWORD})
    assert refused.status_code == 403
    assert db.session.scalar(select(User).where(User.email == "other@example.test")) is None

    page = first.get(f"/signup?next=/invite/{token}")
    assert page.status_code == 200
    assert 'value="guest@example.test"' in text(page)
    # The link admits the invited address only, not whoever holds it under another one.
    taken_over = first.post(
        "/signup",
        {"email": "eve@example.test", "password": PASSWORD, "next": f"/invite/{token}"},
    )
    assert taken_over.status_code == 403
    assert "only the address it was sent to" in text(taken_over)
    assert db.session.scalar(select(User).where(User.email == "eve@example.test")) is None
    joined = first.post(
        "/signup",
        {"email": "Guest@Example.test", "password": PASSWORD, "next": f"/invite/{token}"},
    )
    assert joined.status_code == 303
    assert joined.headers["Location"] == f"/invite/{token}"


# Teams, sites and keys without JavaScript --------------------------------------------


def test_create_team_site_and_api_key_with_plain_forms(app: Flask, browser: Browser) -> None:
    browser.post("/signup", {"email": "maker@example.test", "password": PASSWORD})
    created = browser.post("/teams", {"name": "Blue Widgets"})
    assert created.status_code == 303
    assert created.headers["Location"] == "/t/blue-widgets/sites"
    sites_page = browser.get("/t/blue-widgets/sites")
    assert "Team Blue Widgets created" in text(sites_page)
    assert "No sites yet" in text(sites_page)
    assert browser.get("/").headers["Location"] == "/t/blue-widgets/sites"

    new_site = browser.post(
        "/t/blue-widgets/sites/new",
        {
            "name": "Shop",
            "domain": "https://Shop.Example.com/path",
            "allowed_origins": "https://shop.example.com\n\nhttps://www.shop.example.com\n",
            "timezone": "Europe/Paris",
        },
    )
    assert new_site.status_code == 303
    site = db.session.scalar(select(Site).where(Site.name == "Shop"))
    assert site.domain == "shop.example.com"
    assert site.allowed_origins == ["https://shop.example.com", "https://www.shop.example.com"]
    assert site.timezone == "Europe/Paris"
    assert new_site.headers["Location"] == f"/t/blue-widgets/sites/{site.id}"

    settings_page = text(browser.get(new_site.headers["Location"]))
    snippet = re.search(r'<pre id="tracking-snippet"[^>]*>(.*?)</pre>', settings_page).group(1)
    assert "<script" not in snippet  # shown as text, escaped
    assert f'data-site="{site.site_key}"' in html.unescape(snippet)
    assert 'data-copy="#tracking-snippet"' in settings_page
    assert '<option value="Europe/Paris" selected>' in settings_page

    made = browser.post(
        "/t/blue-widgets/api-keys",
        {"name": "Reporting", "scopes": ["stats:read", "sites:read"], "site_id": str(site.id)},
    )
    assert made.status_code == 201
    assert made.headers["Cache-Control"] == "no-store"
    secret = SECRET.search(text(made)).group(0)
    key = api_keys.authenticate(secret)
    assert key is not None
    assert key.scopes == ["sites:read", "stats:read"] and key.site_id == site.id
    assert secret not in key.key_hash

    again = text(browser.get("/t/blue-widgets/api-keys"))
    assert SECRET.search(again) is None
    assert key.prefix in again and "Reporting" in again


def test_site_settings_are_saved_and_validated(signed_in: Browser, team: Team, owner) -> None:
    site = make_site(team, owner, "old.example")
    url = f"/t/{team.slug}/sites/{site.id}"
    saved = signed_in.post(
        url,
        {"name": "New name", "domain": "new.example", "allowed_origins": "", "timezone": "UTC"},
    )
    assert saved.status_code == 303
    db.session.refresh(site)
    assert (site.name, site.domain) == ("New name", "new.example")
    assert site.allowed_origins == ["https://new.example"]
    assert "Site settings saved." in text(signed_in.get(url))

    bad = signed_in.post(
        url,
        {"name": "", "domain": "not a domain", "allowed_origins": "ftp://x", "timezone": "Mars"},
    )
    assert bad.status_code == 422
    assert "This field is required." in text(bad)
    db.session.refresh(site)
    assert site.name == "New name"

    other = make_site(team, owner, "other.example")
    clash = signed_in.post(
        f"/t/{team.slug}/sites/{other.id}",
        {"name": "Other", "domain": "new.example", "timezone": "UTC"},
    )
    assert clash.status_code == 409
    assert "already has a site for new.example" in text(clash)


def test_api_key_form_offers_only_held_scopes_and_checks_input(
    app: Flask, signed_in: Browser, team: Team, owner: User
) -> None:
    admin = make_user("admin@example.test")
    add_member(team, admin, "admin")
    signed_in.post("/signout")
    signed_in.sign_in(admin.email)
    page = text(signed_in.get(f"/t/{team.slug}/api-keys"))
    assert 'value="stats:read"' in page
    assert 'value="teams:delete"' not in page  # admins do not hold it

    beyond = signed_in.post(
        f"/t/{team.slug}/api-keys", {"name": "Sneaky", "scopes": ["teams:delete"]}
    )
    assert beyond.status_code == 403
    assert "cannot grant scopes you do not hold" in text(beyond)
    missing = signed_in.post(f"/t/{team.slug}/api-keys", {"name": "", "scopes": []})
    assert missing.status_code == 422
    assert "Choose at least one permission." in text(missing)
    past = signed_in.post(
        f"/t/{team.slug}/api-keys",
        {"name": "Old", "scopes": ["stats:read"], "expires_on": "2001-01-01"},
    )
    assert past.status_code == 422
    assert "must be in the future" in text(past)
    assert db.session.scalar(select(ApiKey).where(ApiKey.name.in_(["Sneaky", "Old"]))) is None

    dated = signed_in.post(
        f"/t/{team.slug}/api-keys",
        {"name": "Dated", "scopes": ["stats:read"], "expires_on": "2999-12-31"},
    )
    assert dated.status_code == 201
    key = db.session.scalar(select(ApiKey).where(ApiKey.name == "Dated"))
    assert key.expires_at.isoformat().startswith("3000-01-01T00:00:00")


def test_rotate_and_revoke_an_api_key(signed_in: Browser, team: Team, owner: User) -> None:
    old_secret = make_key(team, owner, ["stats:read"])
    old = api_keys.authenticate(old_secret)
    db.session.commit()

    rotated = signed_in.post(
        f"/t/{team.slug}/api-keys/{old.id}/rotate", {"grace_period_hours": "2"}
    )
    assert rotated.status_code == 200
    assert rotated.headers["Cache-Control"] == "no-store"
    new_secret = SECRET.search(text(rotated)).group(0)
    assert new_secret != old_secret
    assert "keeps working until" in text(rotated)
    db.session.expire_all()
    old = db.session.get(ApiKey, old.id)
    assert timedelta(hours=1, minutes=59) < old.expires_at - utcnow() <= timedelta(hours=2)
    assert api_keys.authenticate(old_secret) is not None  # still inside the grace period
    replacement = api_keys.authenticate(new_secret)
    assert replacement.id == old.rotated_to_id

    twice = signed_in.post(f"/t/{team.slug}/api-keys/{old.id}/rotate", {})
    assert twice.status_code == 422
    assert "already rotated" in text(twice)
    bad_hours = signed_in.post(
        f"/t/{team.slug}/api-keys/{replacement.id}/rotate", {"grace_period_hours": "-1"}
    )
    assert bad_hours.status_code == 422

    confirm = signed_in.get(f"/t/{team.slug}/api-keys/{replacement.id}/revoke")
    assert confirm.status_code == 200
    assert "Revoke the key" in text(confirm)
    assert api_keys.authenticate(new_secret) is not None  # a GET changes nothing

    revoked = signed_in.post(f"/t/{team.slug}/api-keys/{replacement.id}/revoke")
    assert revoked.status_code == 303
    assert revoked.headers["Location"] == f"/t/{team.slug}/api-keys"
    assert api_keys.authenticate(new_secret) is None
    assert "API key test key revoked." in text(signed_in.get(revoked.headers["Location"]))


def test_team_rename_and_delete_with_confirmation(
    signed_in: Browser, team: Team, owner: User
) -> None:
    renamed = signed_in.post(
        f"/t/{team.slug}/settings", {"name": "Acme Global", "slug": "acme-global"}
    )
    assert renamed.status_code == 303
    assert renamed.headers["Location"] == "/t/acme-global/settings"
    bad = signed_in.post("/t/acme-global/settings", {"name": "", "slug": "Not A Slug"})
    assert bad.status_code == 422
    make_team(owner, "Taken Name")
    taken = signed_in.post("/t/acme-global/settings", {"name": "X", "slug": "taken-name"})
    assert taken.status_code == 409

    confirm = signed_in.get("/t/acme-global/delete")
    assert confirm.status_code == 200 and "Type acme-global to confirm" in text(confirm)
    wrong = signed_in.post("/t/acme-global/delete", {"confirm": "acme"})
    assert wrong.status_code == 422
    assert db.session.get(Team, team.id) is not None
    deleted = signed_in.post("/t/acme-global/delete", {"confirm": "acme-global"})
    assert deleted.status_code == 303
    db.session.expire_all()
    assert db.session.get(Team, team.id) is None
    assert signed_in.get("/").headers["Location"] == "/t/taken-name/sites"


def test_the_last_owner_cannot_leave(signed_in: Browser, team: Team) -> None:
    response = signed_in.post(f"/t/{team.slug}/leave")
    assert response.status_code == 409
    assert "at least one owner" in text(response)


# Members ----------------------------------------------------------------------------


def test_invite_change_role_remove_and_withdraw(
    app: Flask, client: FlaskClient, signed_in: Browser, team: Team
) -> None:
    members_url = f"/t/{team.slug}/members"
    invited = signed_in.post(members_url, {"email": "New.Person@example.test", "role": "marketing"})
    assert invited.status_code == 201
    assert invited.headers["Cache-Control"] == "no-store"
    token = INVITE_LINK.search(text(invited)).group(1)
    assert INVITE_LINK.search(text(signed_in.get(members_url))) is None  # shown once
    assert "new.person@example.test" in text(signed_in.get(members_url))

    existing = make_user("colleague@example.test")
    added = signed_in.post(members_url, {"email": "colleague@example.test", "role": "viewer"})
    assert added.status_code == 303
    again = signed_in.post(members_url, {"email": "colleague@example.test", "role": "viewer"})
    assert again.status_code == 409

    changed = signed_in.post(f"{members_url}/{existing.id}/role", {"role": "admin"})
    assert changed.status_code == 303
    assert "colleague@example.test is now admin." in text(signed_in.get(members_url))

    confirm = signed_in.get(f"{members_url}/{existing.id}/remove")
    assert "Remove colleague@example.test?" in text(confirm)
    removed = signed_in.post(f"{members_url}/{existing.id}/remove")
    assert removed.status_code == 303
    assert db.session.scalar(select(Membership).where(Membership.user_id == existing.id)) is None

    invitation = db.session.scalar(select(Invitation).where(Invitation.team_id == team.id))
    withdrawn = signed_in.post(f"/t/{team.slug}/invitations/{invitation.id}/withdraw")
    assert withdrawn.status_code == 303
    assert client.get(f"/invite/{token}").status_code == 404


def test_accept_an_invitation_after_signing_up(
    app: Flask, client: FlaskClient, signed_in: Browser, team: Team
) -> None:
    invited = signed_in.post(
        f"/t/{team.slug}/members", {"email": "guest@example.test", "role": "viewer"}
    )
    token = INVITE_LINK.search(text(invited)).group(1)
    signed_in.post("/signout")

    page = signed_in.get(f"/invite/{token}")
    assert page.status_code == 200
    assert "Acme Marketing" in text(page) and "viewer" in text(page)
    assert f"/signup?next=/invite/{token}" in text(page)
    accept_anonymously = signed_in.post(f"/invite/{token}")
    assert accept_anonymously.status_code == 302
    assert "/signin" in accept_anonymously.headers["Location"]

    signed_in.post(
        "/signup",
        {"email": "guest@example.test", "password": PASSWORD, "next": f"/invite/{token}"},
    )
    signed_in_page = text(signed_in.get(f"/invite/{token}"))
    assert "Accept and join as guest@example.test" in signed_in_page
    accepted = signed_in.post(f"/invite/{token}")
    assert accepted.status_code == 303
    assert accepted.headers["Location"] == f"/t/{team.slug}/sites"
    guest = db.session.scalar(select(User).where(User.email == "guest@example.test"))
    membership = db.session.scalar(select(Membership).where(Membership.user_id == guest.id))
    assert membership.role == "viewer"
    assert signed_in.get(f"/invite/{token}").status_code == 409  # used
    assert signed_in.get("/invite/not-a-real-token").status_code == 404


# htmx -------------------------------------------------------------------------------


def test_htmx_requests_get_partials(signed_in: Browser, team: Team, owner: User) -> None:
    slug = team.slug
    sites_page = signed_in.get(f"/t/{slug}/sites")
    assert "HX-Request" in sites_page.headers["Vary"]
    partial = signed_in.get(f"/t/{slug}/sites", htmx=True)
    assert partial.status_code == 200 and is_partial(partial)
    assert 'id="sites"' in text(partial)
    assert "HX-Request" in partial.headers["Vary"]
    restore = signed_in.client.get(
        f"/t/{slug}/sites", headers={**HTMX, "HX-History-Restore-Request": "true"}
    )
    assert not is_partial(restore)

    new_site = signed_in.post(
        f"/t/{slug}/sites/new", {"name": "Blog", "domain": "blog.example"}, htmx=True
    )
    assert new_site.status_code == 204
    site = db.session.scalar(select(Site).where(Site.domain == "blog.example"))
    assert new_site.headers["HX-Redirect"] == f"/t/{slug}/sites/{site.id}"
    invalid = signed_in.post(f"/t/{slug}/sites/new", {"name": "", "domain": "x y"}, htmx=True)
    assert invalid.status_code == 422 and is_partial(invalid)
    assert 'id="new-site-form"' in text(invalid)

    saved = signed_in.post(
        f"/t/{slug}/sites/{site.id}",
        {"name": "Blog!", "domain": "blog.example", "timezone": "UTC"},
        htmx=True,
    )
    assert saved.status_code == 200 and is_partial(saved)
    assert 'id="site-settings"' in text(saved)
    assert 'hx-swap-oob="true"' in text(saved) and "Site settings saved." in text(saved)

    made = signed_in.post(
        f"/t/{slug}/api-keys",
        {"name": "Live", "scopes": ["stats:read"], "site_context": str(site.id)},
        htmx=True,
    )
    assert made.status_code == 201 and is_partial(made)
    assert text(made).lstrip().startswith('<section id="api-keys"')
    secret = SECRET.search(text(made)).group(0)
    key = api_keys.authenticate(secret)
    db.session.commit()

    rotated = signed_in.post(
        f"/t/{slug}/api-keys/{key.id}/rotate",
        {"grace_period_hours": "0", "site_context": str(site.id)},
        htmx=True,
    )
    assert rotated.status_code == 200 and is_partial(rotated)
    new_secret = SECRET.search(text(rotated)).group(0)
    replacement = api_keys.authenticate(new_secret)
    db.session.commit()

    confirm = signed_in.get(
        f"/t/{slug}/api-keys/{replacement.id}/revoke?site_context={site.id}", htmx=True
    )
    assert is_partial(confirm) and 'class="confirm"' in text(confirm)
    assert 'name="site_context"' in text(confirm)
    revoked = signed_in.post(
        f"/t/{slug}/api-keys/{replacement.id}/revoke", {"site_context": str(site.id)}, htmx=True
    )
    assert revoked.status_code == 200 and is_partial(revoked)
    assert "API key Live revoked." in text(revoked)
    assert api_keys.authenticate(new_secret) is None

    invited = signed_in.post(
        f"/t/{slug}/members", {"email": "fresh@example.test", "role": "viewer"}, htmx=True
    )
    assert invited.status_code == 201 and is_partial(invited)
    assert INVITE_LINK.search(text(invited))
    colleague = make_user("mate@example.test")
    added = signed_in.post(
        f"/t/{slug}/members", {"email": "mate@example.test", "role": "viewer"}, htmx=True
    )
    assert added.status_code == 200 and is_partial(added) and 'id="members"' in text(added)
    role = signed_in.post(f"/t/{slug}/members/{colleague.id}/role", {"role": "member"}, htmx=True)
    assert role.status_code == 200 and is_partial(role)
    assert "mate@example.test is now member." in text(role)
    removed = signed_in.post(f"/t/{slug}/members/{colleague.id}/remove", htmx=True)
    assert removed.status_code == 200 and is_partial(removed)
    assert "mate@example.test" in text(removed)  # the flash names them
    assert f'id="member-{colleague.id}"' not in text(removed)

    renamed = signed_in.post(f"/t/{slug}/settings", {"name": "Acme Two", "slug": slug}, htmx=True)
    assert renamed.status_code == 200 and is_partial(renamed)
    assert 'id="team-settings"' in text(renamed)

    signed_in.post("/signout", htmx=True)
    expired = signed_in.get(f"/t/{slug}/members", htmx=True)
    assert expired.status_code == 204
    assert expired.headers["HX-Redirect"].startswith("/signin?next=")


# Permissions and tenancy ------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "marketing"])
def test_read_only_roles_see_no_settings_actions(
    app: Flask, browser: Browser, team: Team, owner: User, role: str
) -> None:
    site = make_site(team, owner, "shop.example")
    make_key(team, owner, ["stats:read"])
    key = db.session.scalar(select(ApiKey).where(ApiKey.team_id == team.id))
    reader = make_user(f"{role}@example.test")
    add_member(team, reader, role)
    browser.sign_in(reader.email)
    slug = team.slug

    sites_page = text(browser.get(f"/t/{slug}/sites"))
    assert "shop.example" in sites_page
    assert "/sites/new" not in sites_page
    site_page = text(browser.get(f"/t/{slug}/sites/{site.id}"))
    assert site.site_key in site_page  # the snippet is readable
    assert f'action="/t/{slug}/sites/{site.id}"' not in site_page
    assert "Delete site" not in site_page and "api-keys" not in site_page
    members_page = text(browser.get(f"/t/{slug}/members"))
    assert "Invite someone" not in members_page and "Change role" not in members_page
    settings_page = text(browser.get(f"/t/{slug}/settings"))
    assert f'action="/t/{slug}/settings"' not in settings_page
    assert "Delete team" not in settings_page
    nav = text(browser.get(f"/t/{slug}/sites"))
    assert f'href="/t/{slug}/api-keys"' not in nav

    assert browser.get(f"/t/{slug}/api-keys").status_code == 403
    assert browser.get(f"/t/{slug}/sites/new").status_code == 403
    assert browser.get(f"/t/{slug}/delete").status_code == 403
    assert browser.get(f"/t/{slug}/api-keys/{key.id}/revoke").status_code == 403
    assert browser.get(f"/t/{slug}/members/{owner.id}/remove").status_code == 403
    attempts = [
        (f"/t/{slug}/sites/new", {"name": "X", "domain": "x.example"}),
        (f"/t/{slug}/sites/{site.id}", {"name": "X", "domain": "x.example", "timezone": "UTC"}),
        (f"/t/{slug}/sites/{site.id}/delete", {"confirm": "shop.example"}),
        (f"/t/{slug}/settings", {"name": "Mine", "slug": slug}),
        (f"/t/{slug}/delete", {"confirm": slug}),
        (f"/t/{slug}/members", {"email": "friend@example.test", "role": "viewer"}),
        (f"/t/{slug}/members/{owner.id}/role", {"role": "viewer"}),
        (f"/t/{slug}/members/{owner.id}/remove", {}),
        (f"/t/{slug}/api-keys", {"name": "Mine", "scopes": ["stats:read"]}),
        (f"/t/{slug}/api-keys/{key.id}/rotate", {}),
        (f"/t/{slug}/api-keys/{key.id}/revoke", {}),
    ]
    for path, data in attempts:
        for htmx in (False, True):
            status = browser.post(path, data, htmx=htmx).status_code
            assert status in (403, 404), (path, htmx, status)
    db.session.expire_all()
    assert db.session.get(Site, site.id).name == "shop.example"
    assert db.session.get(Team, team.id).name == "Acme Marketing"
    assert db.session.get(ApiKey, key.id).revoked_at is None
    assert len(db.session.scalars(select(Site).where(Site.team_id == team.id)).all()) == 1


def test_another_teams_ids_are_not_found(app: Flask, browser: Browser) -> None:
    mine = make_tenant("mine")
    theirs = make_tenant("theirs")
    their_key = db.session.scalar(select(ApiKey).where(ApiKey.team_id == theirs.team.id))
    browser.sign_in(mine.owner.email)
    slug = mine.team.slug

    assert browser.get(f"/t/{theirs.team.slug}/sites").status_code == 404
    assert browser.get(f"/t/{theirs.team.slug}/settings").status_code == 404
    assert browser.get(f"/t/{slug}/sites/{theirs.site.id}").status_code == 404
    assert browser.get(f"/t/{slug}/sites/999999").status_code == 404
    assert browser.get(f"/t/{slug}/api-keys/{their_key.id}/revoke").status_code == 404
    assert browser.get(f"/t/{slug}/members/{theirs.owner.id}/remove").status_code == 404
    assert browser.get(f"/t/{slug}/api-keys?site={theirs.site.id}").status_code == 404
    attempts = [
        (f"/t/{slug}/sites/{theirs.site.id}", {"name": "X", "domain": "x.example"}),
        (f"/t/{slug}/sites/{theirs.site.id}/delete", {"confirm": theirs.site.domain}),
        (f"/t/{slug}/api-keys/{their_key.id}/rotate", {}),
        (f"/t/{slug}/api-keys/{their_key.id}/revoke", {}),
        (f"/t/{slug}/members/{theirs.owner.id}/role", {"role": "viewer"}),
        (f"/t/{slug}/members/{theirs.owner.id}/remove", {}),
        (f"/t/{theirs.team.slug}/settings", {"name": "Pwned", "slug": theirs.team.slug}),
        (f"/t/{theirs.team.slug}/delete", {"confirm": theirs.team.slug}),
        (
            f"/t/{slug}/api-keys",
            {"name": "Cross", "scopes": ["stats:read"], "site_id": str(theirs.site.id)},
        ),
    ]
    for path, data in attempts:
        status = browser.post(path, data).status_code
        assert status in (404, 422), (path, status)
        if path.endswith("/api-keys"):
            assert status == 422  # the site is simply not one of the team's
        else:
            assert status == 404, path
    db.session.expire_all()
    assert db.session.get(Team, theirs.team.id).name == "Theirs"
    assert db.session.get(ApiKey, their_key.id).revoked_at is None
    assert db.session.scalar(select(ApiKey).where(ApiKey.name == "Cross")) is None


def test_every_page_renders_for_a_team_without_sites(
    signed_in: Browser, team: Team, owner: User
) -> None:
    slug = team.slug
    pages = [
        "/teams",
        f"/t/{slug}/sites",
        f"/t/{slug}/sites/new",
        f"/t/{slug}/api-keys",
        f"/t/{slug}/members",
        f"/t/{slug}/settings",
        f"/t/{slug}/delete",
        f"/t/{slug}/members/{owner.id}/remove",
    ]
    for path in pages:
        response = signed_in.get(path)
        assert response.status_code == 200, path
        page = text(response)
        assert "Acme Marketing" in page, path
        assert 'name="csrf-token"' in page and "Sign out" in page, path
        partial = signed_in.get(path, htmx=True)
        assert partial.status_code == 200 and is_partial(partial), path
    assert signed_in.get("/").headers["Location"] == f"/t/{slug}/sites"
    assert signed_in.get(f"/t/{slug}").headers["Location"] == f"/t/{slug}/sites"
    assert "All sites of the team" in text(signed_in.get(f"/t/{slug}/api-keys"))


def test_team_switcher_lists_my_teams_and_remembers_the_current_one(
    signed_in: Browser, team: Team, owner: User
) -> None:
    other = make_team(owner, "Side Project")
    page = text(signed_in.get(f"/t/{other.slug}/members"))
    assert 'aria-current="true"' in page
    assert f'href="/t/{team.slug}/sites"' in page and f'href="/t/{other.slug}/sites"' in page
    assert signed_in.get("/").headers["Location"] == f"/t/{other.slug}/sites"
    signed_in.get(f"/t/{team.slug}/settings")
    assert signed_in.get("/").headers["Location"] == f"/t/{team.slug}/sites"


def test_delete_a_site_after_typing_its_domain(signed_in: Browser, team: Team, owner: User) -> None:
    site = make_site(team, owner, "gone.example")
    url = f"/t/{team.slug}/sites/{site.id}/delete"
    confirm = signed_in.get(url, htmx=True)
    assert confirm.status_code == 200 and is_partial(confirm)
    assert "Type gone.example to confirm" in text(confirm)
    wrong = signed_in.post(url, {"confirm": "gone"}, htmx=True)
    assert wrong.status_code == 422 and is_partial(wrong)
    assert 'class="confirm"' in text(wrong)
    assert db.session.get(Site, site.id) is not None
    deleted = signed_in.post(url, {"confirm": "Gone.Example"}, htmx=True)
    assert deleted.status_code == 204
    assert deleted.headers["HX-Redirect"] == f"/t/{team.slug}/sites"
    db.session.expire_all()
    assert db.session.get(Site, site.id) is None
    assert "Site gone.example deleted." in text(signed_in.get(f"/t/{team.slug}/sites"))


def test_errors_render_the_error_page_inside_the_layout(signed_in: Browser) -> None:
    missing = signed_in.get("/t/no-such-team/sites")
    assert missing.status_code == 404
    assert "Team not found." in text(missing)
    assert 'id="main"' in text(missing) and "Sign out" in text(missing)
    # htmx swaps <main> from it (see the htmx-config meta tag in base.html)
    assert signed_in.get("/t/no-such-team/sites", htmx=True).status_code == 404


def test_static_assets_are_vendored_and_pinned(client: FlaskClient) -> None:
    htmx = client.get("/static/vendor/htmx.min.js")
    assert htmx.status_code == 200
    readme = client.get("/static/vendor/README.md").get_data(as_text=True)
    version = re.search(r'version:"(2\.0\.\d+)"', htmx.get_data(as_text=True)).group(1)
    assert f"**{version}**" in readme and "htmx.org" in readme
    assert client.get("/static/vendor/htmx.LICENSE").status_code == 200
    css = client.get("/static/css/pulse.css").get_data(as_text=True)
    assert "prefers-color-scheme: dark" in css and ":focus-visible" in css
    assert client.get("/static/js/pulse.js").status_code == 200
    for response in (htmx, client.get("/static/css/pulse.css")):
        response.close()
