"""The htmx dashboard: server-rendered pages and partials over the same services."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("dashboard", __name__)


def init_app(app: Flask) -> None:
    from pulse.dashboard import views  # noqa: F401  (routes)

    app.register_blueprint(bp)
