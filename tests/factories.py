"""Build users, teams, sites and keys through the same services the app uses."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from flask.testing import FlaskClient

from pulse.accounts import api_keys, users
from pulse.accounts.actor import Actor
from pulse.extensions import db
from pulse.models import Membership, Site, Team, User
from pulse.sites import service as sites
from pulse.teams import service as teams

PASSWORD = "correct horse battery staple"
_seq = count(1)


def make_user(email: str | None = None, name: str = "") -> User:
    user = users.sign_up(email or f"user{next(_seq)}@example.test", PASSWORD, name)
    db.session.commit()
    return user


def make_team(owner: User, name: str | None = None, tier: str = "free") -> Team:
    team = teams.create_team(Actor(user=owner), name or f"Team {next(_seq)}", tier=tier)
    db.session.commit()
    return team


def add_member(team: Team, user: User, role: str) -> Membership:
    membership = Membership(team_id=team.id, user_id=user.id, role=role)
    db.session.add(membership)
    db.session.commit()
    return membership


def make_site(team: Team, owner: User, domain: str | None = None) -> Site:
    site = sites.create_site(
        Actor(user=owner), team, name=domain or f"site{next(_seq)}.example", domain=domain or None
    )
    db.session.commit()
    return site


def make_key(team: Team, owner: User, scopes: list[str], site_id: int | None = None) -> str:
    _, secret = api_keys.create_key(
        Actor(user=owner), team, name="test key", scopes=scopes, site_id=site_id
    )
    db.session.commit()
    return secret


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()


@dataclass
class Tenant:
    """One team with an owner, a site and a key holding every scope."""

    owner: User
    team: Team
    site: Site
    key: str


def make_tenant(name: str) -> Tenant:
    owner = make_user(f"{name}-owner@example.test")
    team = make_team(owner, name.title())
    site = make_site(team, owner, f"{name}.example")
    key = make_key(team, owner, ["*"])
    return Tenant(owner, team, site, key)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
