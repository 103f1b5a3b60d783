"""Migrations: one head, upgrade from empty, no drift from the models, downgrade to base.

Each test migrates a database of its own: a SQLite file, or a new PostgreSQL database
created and dropped here (never the run's shared database).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import Column, Integer, MetaData, inspect

from pulse import create_app
from pulse.extensions import db
from tests.integration.test_worker import fresh_postgres_database

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def script_directory() -> ScriptDirectory:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def test_migrations_have_exactly_one_head_and_one_base() -> None:
    scripts = script_directory()
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    assert len(scripts.get_bases()) == 1, scripts.get_bases()
    # Every revision is on the single line from base to head.
    assert len(list(scripts.walk_revisions())) == len(
        list(scripts.iterate_revisions(scripts.get_current_head(), "base"))
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app bound to an empty database of its own (SQLite file or new PostgreSQL db)."""

    def build(url: str) -> Iterator[Flask]:
        app = create_app(
            {
                "PULSE_ENV": "test",
                "SQLALCHEMY_DATABASE_URI": url,
                "SECRET_KEY": "test",
                "REDIS_URL": None,
                "RATELIMIT_STORAGE_URI": "memory://",
            }
        )
        with app.app_context():
            try:
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()

    if request.param == "sqlite":
        yield from build(f"sqlite:///{tmp_path / 'migrations.db'}")
    else:
        with fresh_postgres_database(request.getfixturevalue("postgres_url")) as url:
            yield from build(url)


def schema_drift(metadata: MetaData) -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def user_tables() -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_matches_the_models(empty_app: Flask) -> None:
    assert user_tables() == set()
    upgrade()
    assert user_tables() == set(db.metadata.tables)
    with db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    assert current == script_directory().get_current_head()
    drift = schema_drift(db.metadata)
    assert drift == [], f"models and migrations disagree; add a migration: {drift}"


def test_drift_check_notices_a_model_change(empty_app: Flask) -> None:
    """The check above is not vacuous: a column the migrations lack is reported."""
    upgrade()
    changed = MetaData()
    for table in db.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["users"].append_column(Column("not_migrated", Integer))
    drift = schema_drift(changed)
    assert [(d[0], d[2], d[3].name) for d in drift] == [("add_column", "users", "not_migrated")]


def test_downgrade_to_base_removes_every_table(empty_app: Flask) -> None:
    upgrade()
    downgrade(revision="base")
    assert user_tables() == set()
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() is None
    # And back up again: the downgrade left nothing that blocks a fresh upgrade.
    upgrade()
    assert user_tables() == set(db.metadata.tables)
