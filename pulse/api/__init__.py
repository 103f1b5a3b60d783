"""The JSON API: `/api/v1` plus the seed documents' paths as aliases."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, request

from pulse.extensions import csrf, limiter
from pulse.http import CORS_PREFIXES
from pulse.ratelimits import api_limit, api_limit_key

bp = Blueprint("api", __name__)

# Health and the OpenAPI document are never rate-limited.
EXEMPT = frozenset({"api.health", "api.health_alias1", "api.health_alias2", "api.openapi"})


@bp.before_app_request
def answer_preflight():
    """CORS preflight for any API path, before authentication or rate limits."""
    if request.method == "OPTIONS" and request.path.startswith(CORS_PREFIXES):
        return Response(status=204)
    return None


limiter.limit(
    api_limit,
    key_func=api_limit_key,
    exempt_when=lambda: request.method == "OPTIONS" or request.endpoint in EXEMPT,
)(bp)
csrf.exempt(bp)

from pulse.api import (  # noqa: E402,F401  (routes)
    accounts,
    analytics,
    analytics_explore,
    analytics_funnels,
    analytics_live,
    analytics_pages,
    keys,
    sites,
    system,
    teams,
)


def init_app(app: Flask) -> None:
    """Register the API blueprint."""
    app.register_blueprint(bp)
