"""Shared fixtures: an app on a fresh database, clients, and the real services.

DATABASE_URL decides the database of the whole run (SQLite in a temporary folder when
unset). Tests that need PostgreSQL or Redis themselves take `postgres_url` /
`redis_url`: without the service they skip on a laptop and fail under CI=true.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from pulse import create_app
from pulse.extensions import db

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_URL = os.environ.get(
    "PULSE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PULSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def service_reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def require_service(url: str, default_port: int, name: str) -> str:
    """The URL when the service answers; otherwise fail in CI, skip elsewhere."""
    if service_reachable(url, default_port):
        return url
    message = f"{name} is not reachable at {url}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing service is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return require_service(POSTGRES_URL, 5432, "PostgreSQL")


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = require_service(REDIS_URL, 6379, "Redis")
    return url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The run's database, migrated from empty once."""
    url = os.environ.get("DATABASE_URL")
    if url:
        require_service(url.replace("+psycopg", ""), 5432, "The DATABASE_URL database")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'pulse-test.db'}"
    app = create_app(_settings(url))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return url


def _settings(url: str, **extra: object) -> dict[str, object]:
    settings: dict[str, object] = {
        "PULSE_ENV": "test",
        "SQLALCHEMY_DATABASE_URI": url,
        "SECRET_KEY": "test-secret-key",
        "BASE_URL": "http://localhost",
        "REDIS_URL": None,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "SMTP_HOST": None,
        # Requests reach Redis (or the database) before the response; tests of the
        # spool, and the servers of the durability tests, turn it on.
        "INGEST_SPOOL": False,
    }
    settings.update(extra)
    return settings


@pytest.fixture
def settings(database_url: str) -> dict[str, object]:
    """Override this (or update it) in a test module to change the app's settings."""
    return _settings(database_url)


@pytest.fixture
def app(settings: dict[str, object]) -> Iterator[Flask]:
    application = create_app(settings)
    with application.app_context():
        yield application
        db.session.remove()
        _empty_tables()
        db.engine.dispose()


def _empty_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))  # noqa: S608 (our table names)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()
