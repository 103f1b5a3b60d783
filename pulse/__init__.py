"""Pulse: self-hosted web analytics that tells humans from bots and AI agents."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `config` overrides the environment (tests pass a dict here)."""
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    register_config(app, config)
    register_http(app)
    register_extensions(app)
    register_blueprints(app)
    register_cli(app)
    register_wsgi(app)
    return app


def register_config(app: Flask, overrides: dict[str, Any] | None) -> None:
    from pulse.config import load_config

    app.config.update(load_config(app.instance_path, overrides))


def register_wsgi(app: Flask) -> None:
    """Middleware around Flask: the tracking fast lane, inside the trusted-proxy fix."""
    from pulse.ingest.lane import TrackingLane

    app.wsgi_app = TrackingLane(app, app.wsgi_app)  # type: ignore[method-assign]
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def register_extensions(app: Flask) -> None:
    from pulse import models  # noqa: F401  (tables must be known to Flask-Migrate)
    from pulse.accounts import auth
    from pulse.extensions import csrf, db, limiter, migrate
    from pulse.jobs import init_app as init_jobs

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(app.root_path), "migrations"))
    auth.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    init_jobs(app)


def register_http(app: Flask) -> None:
    from pulse import http
    from pulse.errors import register_error_handlers

    http.init_app(app)
    register_error_handlers(app)


def register_blueprints(app: Flask) -> None:
    from pulse import api, dashboard, tracker
    from pulse.ingest import views as ingest

    api.init_app(app)
    ingest.init_app(app)
    tracker.init_app(app)
    dashboard.init_app(app)


def register_cli(app: Flask) -> None:
    from pulse.cli import register

    register(app)
