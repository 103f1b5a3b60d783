"""Configuration: defaults, then the environment, then the overrides dict.

The environment is read when `load_config` is called (from `create_app`), never at
import, so tests and tools can build apps with different settings in one process.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from pulse.errors import ConfigError

VERSION = "0.1.0"

ENVIRONMENTS = ("development", "production", "test")


def limiter_storage_uri(uri: str) -> str:
    """Flask-Limiter's name for a Redis URL: a Unix socket is `redis+unix://` there."""
    if uri.startswith("unix://"):
        return "redis+unix://" + uri[len("unix://") :]
    return uri


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual way."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def persistent_secret_key(instance_path: str) -> str:
    """Read the instance's secret key, creating it (mode 0600) on first use."""
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_config(instance_path: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the settings dict for one app."""
    env = os.environ
    overrides = dict(overrides or {})
    pulse_env = overrides.get("PULSE_ENV") or env.get("PULSE_ENV") or "development"
    if pulse_env not in ENVIRONMENTS:
        raise ConfigError(f"PULSE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {pulse_env!r}")
    production = pulse_env == "production"

    default_sqlite = f"sqlite:///{Path(instance_path) / 'pulse.db'}"
    database_url = env.get("DATABASE_URL") or default_sqlite
    redis_url = env.get("REDIS_URL") or None
    config: dict[str, Any] = {
        "PULSE_ENV": pulse_env,
        "VERSION": VERSION,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "BASE_URL": (env.get("BASE_URL") or "http://127.0.0.1:5000").rstrip("/"),
        "SECRET_KEY": env.get("SECRET_KEY") or None,
        "SMTP_HOST": env.get("SMTP_HOST") or None,
        "SMTP_PORT": int(env.get("SMTP_PORT") or 25),
        "SMTP_USERNAME": env.get("SMTP_USERNAME") or None,
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD") or None,
        "SMTP_FROM": env.get("SMTP_FROM") or "Pulse <pulse@localhost>",
        "SMTP_STARTTLS": _bool(env.get("SMTP_STARTTLS")),
        "SMTP_TIMEOUT": float(env.get("SMTP_TIMEOUT") or 10),
        "CRON_SECRET": env.get("CRON_SECRET") or None,
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES") or 0),
        "AUDIT_LOG_RETENTION_DAYS": int(env.get("AUDIT_LOG_RETENTION_DAYS") or 365),
        "IDEMPOTENCY_TTL_HOURS": 24,
        "SIGNUP_OPEN": _bool(env.get("SIGNUP_OPEN"), default=True),
        "INGEST_IP_WHITELIST": [
            n.strip() for n in (env.get("INGEST_IP_WHITELIST") or "").split(",") if n.strip()
        ],
        # Flask and extensions
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": pulse_env != "development" and pulse_env != "test",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": pulse_env != "development" and pulse_env != "test",
        "WTF_CSRF_TIME_LIMIT": None,
        "RATELIMIT_ENABLED": _bool(env.get("RATELIMIT_ENABLED"), default=True),
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_STRATEGY": "fixed-window",
        "RATELIMIT_KEY_PREFIX": "pulse-rl",
        # Redis down: per-IP limits fall back to per-process memory instead of a 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Acknowledge into the Redis buffer only if Redis has an append-only file.
        "INGEST_BUFFER_REQUIRE_AOF": _bool(env.get("INGEST_BUFFER_REQUIRE_AOF"), default=True),
        "INGEST_FAST_LANE": _bool(env.get("INGEST_FAST_LANE"), default=True),
        # Spool tracking requests in a local file, shipped to Redis in batches (spool.py).
        "INGEST_SPOOL": _bool(env.get("INGEST_SPOOL"), default=True),
        "INGEST_SPOOL_DIR": env.get("INGEST_SPOOL_DIR") or str(Path(instance_path) / "spool"),
        "INGEST_SPOOL_SHIP_INTERVAL": float(env.get("INGEST_SPOOL_SHIP_INTERVAL") or 0.05),
    }
    config.update(overrides)
    config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(config["SQLALCHEMY_DATABASE_URI"])
    if config.get("REDIS_URL") and "RATELIMIT_STORAGE_URI" not in overrides:
        config["RATELIMIT_STORAGE_URI"] = config["REDIS_URL"]
    config["RATELIMIT_STORAGE_URI"] = limiter_storage_uri(config["RATELIMIT_STORAGE_URI"])

    uri = config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgresql"):
        # JIT compiling pays off for queries of many seconds; reports take tens of ms,
        # and JIT's 40-50 ms of compiling was half the raw part of a 30-day overview at
        # 10M events (bench/query.py). A server's own setting is overridden per session.
        options = dict(config["SQLALCHEMY_ENGINE_OPTIONS"])
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("options", "-c jit=off")
        config["SQLALCHEMY_ENGINE_OPTIONS"] = {**options, "connect_args": connect_args}
    if uri == default_sqlite:
        Path(instance_path).mkdir(parents=True, exist_ok=True)
    in_memory = uri in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in uri
    if production:
        if in_memory:
            raise ConfigError("production refuses an in-memory SQLite database: set DATABASE_URL")
        if not config["SECRET_KEY"]:
            try:
                config["SECRET_KEY"] = persistent_secret_key(instance_path)
            except OSError as exc:
                raise ConfigError(
                    f"production needs SECRET_KEY or a writable instance folder: {exc}"
                ) from exc
    elif not config["SECRET_KEY"]:
        config["SECRET_KEY"] = persistent_secret_key(instance_path)
    return config
