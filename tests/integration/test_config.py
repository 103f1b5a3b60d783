"""Settings: production guards, the generated secret key, URL normalisation, cookie flags."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from pulse import create_app
from pulse.config import load_config, normalise_database_url
from pulse.errors import ConfigError
from pulse.extensions import db

PULSE_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "PULSE_ENV",
    "BASE_URL",
    "SIGNUP_OPEN",
    "RATELIMIT_ENABLED",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test states the environment it needs; none leaks in from the shell."""
    for name in PULSE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def instance_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every Flask app built in this test at a temporary instance folder."""
    folder = tmp_path / "instance"
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: str(folder))
    return folder


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x?mode=memory"])
def test_production_refuses_an_in_memory_database(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="in-memory"):
        load_config(str(tmp_path), {"PULSE_ENV": "production", "SQLALCHEMY_DATABASE_URI": url})
    monkeypatch.setenv("PULSE_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    with pytest.raises(ConfigError, match="in-memory"):
        create_app()


def test_other_environments_accept_an_in_memory_database(tmp_path: Path) -> None:
    for env in ("development", "test"):
        config = load_config(
            str(tmp_path), {"PULSE_ENV": env, "SQLALCHEMY_DATABASE_URI": "sqlite://"}
        )
        assert config["SQLALCHEMY_DATABASE_URI"] == "sqlite://"


def test_unknown_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PULSE_ENV"):
        load_config(str(tmp_path), {"PULSE_ENV": "staging"})


def test_production_without_a_persistable_secret_key_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(
            str(blocker / "instance"),
            {"PULSE_ENV": "production", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"},
        )


def test_secret_key_is_generated_once_with_mode_0600(instance_dir: Path) -> None:
    assert not instance_dir.exists()
    first = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert first.instance_path == str(instance_dir)
    key_file = instance_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert first.config["SECRET_KEY"] == key

    second = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert second.config["SECRET_KEY"] == key
    assert key_file.read_text().strip() == key


def test_production_also_persists_a_generated_key(instance_dir: Path, tmp_path: Path) -> None:
    settings = {"PULSE_ENV": "production", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"}
    first = create_app(settings)
    assert first.config["SECRET_KEY"] == (instance_dir / "secret_key").read_text().strip()
    assert create_app(settings).config["SECRET_KEY"] == first.config["SECRET_KEY"]


def test_default_sqlite_database_works_without_an_instance_folder(
    instance_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SECRET_KEY set, no DATABASE_URL, instance folder not there yet (a fresh install)."""
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance_dir / 'pulse.db'}"
    with app.app_context():
        assert db.session.execute(text("SELECT 1")).scalar() == 1
        db.engine.dispose()


def test_an_explicit_secret_key_writes_no_file(
    instance_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert not (instance_dir / "secret_key").exists()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example:5432/pulse", "postgresql+psycopg://u:p@db.example:5432/pulse"),
        ("postgresql://u@localhost/pulse", "postgresql+psycopg://u@localhost/pulse"),
        ("postgresql+psycopg://u@localhost/pulse", "postgresql+psycopg://u@localhost/pulse"),
        ("sqlite:////var/lib/pulse.db", "sqlite:////var/lib/pulse.db"),
    ],
)
def test_database_urls_are_normalised_to_psycopg(
    given: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert normalise_database_url(given) == expected
    monkeypatch.setenv("DATABASE_URL", given)
    assert load_config(str(tmp_path), {"SECRET_KEY": "x"})["SQLALCHEMY_DATABASE_URI"] == expected


def test_without_database_url_the_database_is_sqlite_in_the_instance_folder(
    tmp_path: Path,
) -> None:
    config = load_config(str(tmp_path), {"SECRET_KEY": "x"})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'pulse.db'}"
    assert config["REDIS_URL"] is None
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"


def test_redis_url_also_stores_the_rate_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    config = load_config(str(tmp_path), {"SECRET_KEY": "x"})
    assert config["REDIS_URL"] == "redis://127.0.0.1:6379/3"
    assert config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/3"


@pytest.fixture(params=["development", "test", "production"])
def settings(request: pytest.FixtureRequest, settings: dict[str, object]) -> dict[str, object]:
    """conftest's settings, in each PULSE_ENV (used by the cookie test's `client`)."""
    return {**settings, "PULSE_ENV": request.param}


def test_session_cookie_flags(app: Flask, client) -> None:
    env = app.config["PULSE_ENV"]
    response = client.post(
        "/api/v1/auth/signup",
        json={"email": "cookie@example.com", "password": "a long enough password"},
    )
    assert response.status_code == 201, response.get_json()
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert len(cookies) == 1
    flags = {part.strip().lower() for part in cookies[0].split(";")[1:]}
    assert "httponly" in flags
    assert "samesite=lax" in flags
    assert ("secure" in flags) is (env == "production")
    assert app.config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    assert app.config["REMEMBER_COOKIE_SECURE"] is (env == "production")


def test_postgresql_sessions_run_without_jit(tmp_path: Path, app: Flask) -> None:
    """Reports are short queries that JIT compiling only slows down (bench/query.py)."""
    url = "postgresql://pulse@db.example:5432/pulse"
    config = load_config(str(tmp_path), {"SQLALCHEMY_DATABASE_URI": url})
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"]["options"] == "-c jit=off"
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is True
    sqlite = load_config(str(tmp_path), {"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert "connect_args" not in sqlite["SQLALCHEMY_ENGINE_OPTIONS"]
    if db.engine.dialect.name == "postgresql":
        assert db.session.execute(text("SHOW jit")).scalar_one() == "off"
