"""Idempotency-Key: the first response to a key is replayed for 24 hours.

Records are written on their own connection, outside the request's transaction,
so a second request with the same key sees the first one while it still runs
(and gets 409) instead of running twice.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import Response, current_app, request
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from pulse.errors import BadRequest, Conflict, ValidationFailed
from pulse.extensions import db
from pulse.models import IdempotencyRecord, utcnow

METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
table = IdempotencyRecord.__table__


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(request.full_path.encode("utf-8", "surrogateescape"))
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def requested_key() -> str | None:
    """The Idempotency-Key of a state-changing request, or None."""
    if request.method not in METHODS:
        return None
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > 255:
        raise BadRequest(
            "Idempotency-Key must be 1-255 characters.", code="invalid_idempotency_key"
        )
    return key


def begin(owner: str, key: str) -> Response | None:
    """Claim the key, or answer with the stored response (or a 409/422 about it)."""
    fingerprint = _fingerprint()
    ttl = timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    with db.engine.begin() as conn:
        conn.execute(
            delete(table).where(
                table.c.owner == owner, table.c.key == key, table.c.created_at < utcnow() - ttl
            )
        )
    try:
        with db.engine.begin() as conn:
            conn.execute(
                insert(table).values(
                    owner=owner, key=key, fingerprint=fingerprint, created_at=utcnow()
                )
            )
        return None
    except IntegrityError:
        pass
    with db.engine.connect() as conn:
        row = conn.execute(
            select(table).where(table.c.owner == owner, table.c.key == key)
        ).one_or_none()
    if row is None:
        raise Conflict("Retry the request.", code="idempotency_in_progress")
    if row.fingerprint != fingerprint:
        raise ValidationFailed(
            "This Idempotency-Key was used with a different request.",
            code="idempotency_key_reused",
        )
    if row.status_code is None:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed.",
            code="idempotency_in_progress",
        )
    response = Response(row.body, status=row.status_code, content_type=row.content_type)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def finish(owner: str, key: str, response: Response) -> None:
    """Store a final response (below 500), or release the key so a retry can run."""
    with db.engine.begin() as conn:
        if response.status_code >= 500 or response.status_code in (409, 429):
            conn.execute(delete(table).where(table.c.owner == owner, table.c.key == key))
            return
        conn.execute(
            update(table)
            .where(table.c.owner == owner, table.c.key == key)
            .values(
                status_code=response.status_code,
                content_type=response.content_type,
                body=response.get_data(),
            )
        )


def release(owner: str, key: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(delete(table).where(table.c.owner == owner, table.c.key == key))


def prune(now=None) -> int:
    """Delete records older than the replay window; returns how many went."""
    cutoff = (now or utcnow()) - timedelta(hours=current_app.config["IDEMPOTENCY_TTL_HOURS"])
    result = db.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)
    )
    return result.rowcount or 0
