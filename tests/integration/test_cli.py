"""The `pulse` command: demo data, accounts, teams, sites and retention by hand."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import orjson
import requests
from sqlalchemy import func, select

from pulse.accounts.users import authenticate
from pulse.extensions import db
from pulse.models import AuditLog, Membership, Site, Team, User, utcnow
from tests.integration.test_worker import (
    Processes,
    console_script,
    free_port,
    process_env,
    wait_for,
)

PASSWORD = "a long enough password"


def counts() -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        db.session.scalar(select(func.count()).select_from(model)) for model in (User, Team, Site)
    )


def test_demo_creates_owner_team_and_site_once(app, runner) -> None:
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert counts() == (1, 1, 1)

    owner = db.session.scalar(select(User))
    team = db.session.scalar(select(Team))
    site = db.session.scalar(select(Site))
    assert owner.email == "demo@pulse.local"
    assert team.slug == "demo"
    assert site.team_id == team.id
    membership = db.session.scalar(select(Membership))
    assert (membership.user_id, membership.team_id, membership.role) == (owner.id, team.id, "owner")

    base = app.config["BASE_URL"]
    assert f"sign in at {base}/signin" in result.output
    assert "email:     demo@pulse.local" in result.output
    password = re.search(r"password:\s+(\S+)", result.output).group(1)
    assert authenticate("demo@pulse.local", password) is not None
    assert f'src="{base}/pulse.js" data-site="{site.site_key}"' in result.output

    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0, again.output
    assert "Accounts exist already" in again.output
    assert "password" not in again.output
    assert counts() == (1, 1, 1)


def test_demo_does_nothing_when_any_account_exists(runner) -> None:
    created = runner.invoke(
        args=["users", "create", "--email", "first@example.com", "--password", PASSWORD]
    )
    assert created.exit_code == 0, created.output
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert counts() == (1, 0, 0)


def test_users_create_prompts_for_the_password(runner) -> None:
    result = runner.invoke(
        args=["users", "create", "--email", "Ada@Example.com", "--name", "Ada"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User))
    assert re.search(rf"created user {user.id} <ada@example.com>", result.output)
    assert user.name == "Ada"
    assert authenticate("ada@example.com", PASSWORD) is not None
    assert PASSWORD not in result.output


def test_users_create_refuses_a_taken_email_and_a_short_password(runner) -> None:
    args = ["users", "create", "--email", "ada@example.com", "--password"]
    assert runner.invoke(args=[*args, PASSWORD]).exit_code == 0
    assert runner.invoke(args=[*args, PASSWORD]).exit_code != 0
    short = runner.invoke(args=["users", "create", "--email", "b@example.com", "--password", "x"])
    assert short.exit_code != 0
    assert counts() == (1, 0, 0)


def test_teams_create_and_sites_add(app, runner) -> None:
    runner.invoke(args=["users", "create", "--email", "owner@example.com", "--password", PASSWORD])
    team_result = runner.invoke(
        args=["teams", "create", "--owner", "owner@example.com", "--name", "Acme Corp"]
    )
    assert team_result.exit_code == 0, team_result.output
    team = db.session.scalar(select(Team))
    assert team_result.output.strip() == f"created team {team.slug}"
    assert team.name == "Acme Corp"
    membership = db.session.scalar(select(Membership).where(Membership.team_id == team.id))
    assert membership.role == "owner" and membership.user.email == "owner@example.com"

    site_result = runner.invoke(
        args=["sites", "add", "--team", team.slug, "--domain", "https://www.Example.org/"]
    )
    assert site_result.exit_code == 0, site_result.output
    site = db.session.scalar(select(Site))
    assert (site.team_id, site.domain, site.name) == (team.id, "www.example.org", site.name)
    assert site_result.output.startswith(f"site {site.id}: www.example.org\n")
    assert f'data-site="{site.site_key}"' in site_result.output
    assert f'src="{app.config["BASE_URL"]}/pulse.js"' in site_result.output


def test_teams_create_with_an_explicit_slug(runner) -> None:
    runner.invoke(args=["users", "create", "--email", "owner@example.com", "--password", PASSWORD])
    result = runner.invoke(
        args=["teams", "create", "--owner", "owner@example.com", "--name", "X", "--slug", "my-team"]
    )
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(Team.slug)) == "my-team"


def test_unknown_owner_or_team_is_an_error(runner) -> None:
    result = runner.invoke(args=["teams", "create", "--owner", "nobody@example.com", "--name", "X"])
    assert result.exit_code == 1
    assert "no account nobody@example.com" in result.output
    result = runner.invoke(args=["sites", "add", "--team", "missing", "--domain", "example.org"])
    assert result.exit_code == 1
    assert "no team missing" in result.output
    assert counts() == (0, 0, 0)


def test_jobs_prune_deletes_expired_rows_now(app, runner) -> None:
    retention = app.config["AUDIT_LOG_RETENTION_DAYS"]
    db.session.add_all(
        [
            AuditLog(action="old", details={}, created_at=utcnow() - timedelta(days=retention + 1)),
            AuditLog(action="recent", details={}, created_at=utcnow()),
        ]
    )
    db.session.commit()
    result = runner.invoke(args=["jobs", "prune"])
    assert result.exit_code == 0, result.output
    assert "audit_logs: 1 deleted" in result.output
    assert "idempotency_records: 0 deleted" in result.output
    assert db.session.scalars(select(AuditLog.action)).all() == ["recent"]


def test_openapi_prints_the_document(runner) -> None:
    result = runner.invoke(args=["openapi"])
    assert result.exit_code == 0, result.output
    document = orjson.loads(result.output)
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/teams" in document["paths"]


def test_pulse_serve_answers_http(tmp_path: Path) -> None:
    """`pulse serve` (what `make run` ends with) really listens, on the port it is given."""
    port = free_port()
    env = process_env(DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}", PORT=str(port))
    procs = Processes(tmp_path)
    try:
        procs.start("serve", [console_script("pulse"), "serve"], env)

        def health() -> dict | None:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=5)
            except (requests.ConnectionError, requests.Timeout):
                return None
            return response.json() if response.status_code == 200 else None

        body = wait_for(health, 30, "pulse serve to answer /api/health", procs=procs)
        assert body["db"] is True and body["jobs"] == "in-process"
    finally:
        procs.stop()
