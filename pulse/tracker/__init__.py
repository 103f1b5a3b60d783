"""The pulse.js tracker: its source, the committed minified builds, and the views serving them."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Serve the tracker at /pulse.js and its aliases; calling it twice is harmless."""
    from pulse.extensions import csrf
    from pulse.tracker.views import bp

    if bp.name in app.blueprints:
        return
    csrf.exempt(bp)
    app.register_blueprint(bp)
