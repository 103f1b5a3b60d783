"""The `pulse` command: noun groups over the same services the API calls."""

from __future__ import annotations

import os
import secrets

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from pulse.accounts.actor import Actor
from pulse.extensions import db


def _create_app():
    from pulse import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=True)
def main() -> None:
    """Pulse web analytics."""


def register(app: Flask) -> None:
    for command in (
        users,
        teams,
        sites,
        demo,
        serve,
        worker,
        cron,
        jobs,
        openapi,
        ingest,
        rollups,
        import_log,
    ):
        app.cli.add_command(command)


@click.group()
def users() -> None:
    """Manage accounts."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--name", default="")
@click.password_option()
@with_appcontext
def users_create(email: str, name: str, password: str) -> None:
    """Create an account."""
    from pulse.accounts.users import sign_up

    user = sign_up(email, password, name)
    db.session.commit()
    click.echo(f"created user {user.id} <{user.email}>")


@click.group()
def teams() -> None:
    """Manage teams."""


@teams.command("create")
@click.option("--owner", "owner_email", required=True, help="Email of an existing account")
@click.option("--name", required=True)
@click.option("--slug", default=None)
@with_appcontext
def teams_create(owner_email: str, name: str, slug: str | None) -> None:
    """Create a team owned by an account."""
    from pulse.accounts.users import find_by_email
    from pulse.teams.service import create_team

    owner = find_by_email(owner_email)
    if owner is None:
        raise click.ClickException(f"no account {owner_email}")
    team = create_team(Actor(user=owner), name, slug)
    db.session.commit()
    click.echo(f"created team {team.slug}")


@click.group()
def sites() -> None:
    """Manage sites."""


@sites.command("add")
@click.option("--team", "team_slug", required=True)
@click.option("--domain", required=True)
@click.option("--name", default=None)
@with_appcontext
def sites_add(team_slug: str, domain: str, name: str | None) -> None:
    """Add a site to a team (as the team's first owner) and print its snippet."""
    from sqlalchemy import select

    from pulse.models import Membership, Team
    from pulse.sites.service import create_site, tracking_snippet

    team = db.session.scalar(select(Team).where(Team.slug == team_slug))
    if team is None:
        raise click.ClickException(f"no team {team_slug}")
    owner = db.session.scalar(
        select(Membership).where(Membership.team_id == team.id, Membership.role == "owner")
    )
    site = create_site(Actor(user=owner.user), team, name=name or domain, domain=domain)
    db.session.commit()
    click.echo(f"site {site.id}: {site.domain}\n{tracking_snippet(site)}")


@click.command()
@with_appcontext
def demo() -> None:
    """Create a demo owner, team and site when the database has no account yet."""
    from pulse.accounts.users import count_users, sign_up
    from pulse.sites.service import create_site, tracking_snippet
    from pulse.teams.service import create_team

    if count_users() > 0:
        click.echo(
            "Accounts exist already: sign in with yours at " + current_app.config["BASE_URL"]
        )
        return
    password = secrets.token_urlsafe(12)
    owner = sign_up("demo@pulse.local", password, "Demo Owner")
    actor = Actor(user=owner)
    team = create_team(actor, "Demo Team", "demo")
    site = create_site(
        actor,
        team,
        name="Demo site",
        domain="demo.pulse.local",
        allowed_origins=[current_app.config["BASE_URL"]],
    )
    db.session.commit()
    base = current_app.config["BASE_URL"]
    click.echo(
        "\n".join(
            [
                "",
                "Demo account created (shown once):",
                f"  sign in at {base}/signin",
                "  email:     demo@pulse.local",
                f"  password:  {password}",
                "Tracking snippet for the demo site:",
                f"  {tracking_snippet(site)}",
                "",
            ]
        )
    )


@click.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), type=int)
@with_appcontext
def serve(host: str, port: int) -> None:
    """Run the development server (production: gunicorn wsgi:app)."""
    from werkzeug.serving import run_simple

    # Flask ignores app.run() under its own CLI, so serve with werkzeug directly.
    run_simple(host, port, current_app._get_current_object(), threaded=True)


@click.command()
@click.option("--queue", "queues", multiple=True, help="Queues to work (default: all)")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty")
@with_appcontext
def worker(queues: tuple[str, ...], burst: bool) -> None:
    """Start an RQ worker for emails, webhooks, periodic and default jobs."""
    from pulse.jobs.worker import run_worker

    run_worker(current_app._get_current_object(), list(queues) or None, burst)


@click.command()
@with_appcontext
def cron() -> None:
    """Start RQ's cron scheduler with Pulse's periodic jobs."""
    from pulse.jobs.worker import run_cron

    run_cron(current_app._get_current_object())


@click.group()
def jobs() -> None:
    """Run jobs by hand."""


@jobs.command("prune")
@with_appcontext
def jobs_prune() -> None:
    """Run the retention job now, in this process."""
    from pulse.jobs.maintenance import prune_expired

    for table, count in prune_expired().items():
        click.echo(f"{table}: {count} deleted")


@click.command()
@with_appcontext
def openapi() -> None:
    """Print the OpenAPI document."""
    import orjson

    from pulse.api.openapi import document

    click.echo(orjson.dumps(document(), option=orjson.OPT_INDENT_2).decode())


@click.group()
def ingest() -> None:
    """Tracking data."""


@ingest.command("drain")
@with_appcontext
def ingest_drain() -> None:
    """Move every buffered event from Redis into the database now."""
    from pulse.ingest.buffer import drain_all

    if not current_app.config.get("REDIS_URL"):
        raise click.ClickException("no REDIS_URL: events are written directly, nothing to drain")
    click.echo(f"{drain_all(current_app._get_current_object())} events written")


@click.group()
def rollups() -> None:
    """Daily roll-ups that answer the common reports."""


@rollups.command("refresh")
@click.option("--all", "everything", is_flag=True, help="Also mark days stored before roll-ups.")
@with_appcontext
def rollups_refresh(everything: bool) -> None:
    """Build every closed day whose roll-up is missing or stale, now."""
    from pulse.analytics import rollups as daily

    if everything:
        daily.mark_existing()
        db.session.commit()
    click.echo(f"{daily.refresh_due(limit=100_000)} days built")


@click.command("import-log")
@click.option("--site", "site_ref", required=True, help="Site id or site key.")
@click.option("--restart", is_flag=True, help="Ignore saved offsets: read every file again.")
@click.option("--batch-size", default=500, show_default=True, type=click.IntRange(1, 10_000))
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def import_log(site_ref: str, restart: bool, batch_size: int, files: tuple[str, ...]) -> None:
    """Import nginx/Apache access logs (combined or common, plain or gzip).

    Bots and AI crawlers rarely run JavaScript: the server's log is where they show.
    Safe to run again (events are deduplicated) and resumable after an interruption.
    """
    from pulse.ingest import logimport

    site = logimport.find_site(site_ref)
    if site is None:
        raise click.ClickException(f"no site {site_ref}")
    total = sum(os.path.getsize(path) for path in files)
    with click.progressbar(length=total, label=f"Importing into {site.domain}") as bar:
        try:
            summary = logimport.import_files(
                files, site, restart=restart, batch_size=batch_size, progress=bar.update
            )
        except KeyboardInterrupt:
            raise click.ClickException(
                "interrupted: committed batches are kept; run the same command to resume"
            ) from None
    for line in summary.report():
        click.echo(line)
