"""Retention jobs: throw away what Pulse promised not to keep."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete

from pulse.api import idempotency
from pulse.extensions import db
from pulse.ingest.salts import purge_old_salts
from pulse.jobs import job
from pulse.models import AuditLog, utcnow


def prune_expired() -> dict[str, int]:
    """Delete idempotency records past 24 h, audit logs past their retention, old salts."""
    days = current_app.config["AUDIT_LOG_RETENTION_DAYS"]
    audit_cutoff = utcnow() - timedelta(days=days)
    # Salts first: they are deleted on their own connection, before this session
    # takes SQLite's write lock with the deletes below.
    salts = purge_old_salts(utcnow().date())
    pruned = {
        "idempotency_records": idempotency.prune(),
        "audit_logs": db.session.execute(
            delete(AuditLog).where(AuditLog.created_at < audit_cutoff)
        ).rowcount
        or 0,
        "daily_salts": salts,
    }
    db.session.commit()
    return pruned


@job
def purge_expired_records() -> dict[str, int]:
    """The periodic job: what `prune_expired` removed, kept as the RQ result."""
    return prune_expired()


@job
def refresh_rollups() -> int:
    """The periodic job: build the roll-ups of closed days that are missing or stale."""
    from pulse.analytics import rollups

    return rollups.refresh_due()
