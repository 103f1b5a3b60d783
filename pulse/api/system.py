"""Health, the OpenAPI document, and the retention trigger for external cron."""

from __future__ import annotations

import hmac

from flask import current_app, request
from sqlalchemy import text

from pulse.api import bp, schemas
from pulse.api.routing import operation
from pulse.errors import ServiceUnavailable, Unauthorized
from pulse.extensions import db
from pulse.models import utcnow


def database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        db.session.rollback()
        return False


def redis_ok() -> bool | None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        return bool(Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except (RedisError, OSError):
        return False


@operation(
    bp,
    "/api/health",
    summary="Liveness and readiness",
    tag="system",
    auth="none",
    aliases=["/health", "/api/v1/health"],
    response=schemas.HealthOut,
    envelope="none",
    errors=(503,),
)
def health():
    """200 when the database answers (status `degraded` if Redis does not), else 503."""
    db_up = database_ok()
    redis_up = redis_ok()
    body = schemas.HealthOut(
        status="ok" if db_up and redis_up is not False else ("degraded" if db_up else "down"),
        db=db_up,
        redis=redis_up,
        jobs="rq" if current_app.config.get("REDIS_URL") else "in-process",
        email=bool(current_app.config.get("SMTP_HOST")),
        billing=False,
        observability=False,
        version=current_app.config["VERSION"],
        timestamp=utcnow(),
    )
    return body.model_dump(mode="json"), 200 if db_up else 503


@operation(
    bp,
    "/api/v1/openapi.json",
    summary="This API's OpenAPI 3.1 document",
    tag="system",
    auth="none",
    envelope="none",
)
def openapi():
    from pulse.api.openapi import document

    return document()


@operation(
    bp,
    "/api/cron/retention",
    methods=["POST"],
    summary="Run retention now",
    tag="system",
    auth="none",
    response=schemas.RetentionOut,
    envelope="none",
    aliases=["/api/v1/cron/retention"],
    errors=(401, 503),
)
def cron_retention():
    """Seed 003: prune audit logs and idempotency records; `Bearer <CRON_SECRET>`."""
    from pulse.jobs.maintenance import prune_expired

    secret = current_app.config.get("CRON_SECRET")
    if not secret:
        raise ServiceUnavailable("CRON_SECRET is not configured.", code="not_configured")
    header = request.headers.get("Authorization", "")
    given = header[7:] if header[:7].lower() == "bearer " else ""
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), secret.encode()):
        raise Unauthorized("Invalid cron secret.")
    return {"pruned": prune_expired()}
