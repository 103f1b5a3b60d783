"""enqueue(): jobs start after the commit, never after a rollback; in-process without Redis."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rq import Queue

from pulse.extensions import db
from pulse.jobs import enqueue, redis_connection
from pulse.models import AuditLog, DailySalt, IdempotencyRecord, utcnow

CALLS: list[tuple] = []


def remember(*args):
    CALLS.append(args)


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


def test_in_process_job_runs_after_commit(app):
    enqueue(remember, 1, 2)
    assert CALLS == []
    db.session.commit()
    assert CALLS == [(1, 2)]


def test_job_is_dropped_on_rollback(app):
    enqueue(remember, "lost")
    db.session.rollback()
    db.session.commit()
    assert CALLS == []


def test_unknown_queue_is_refused(app):
    with pytest.raises(ValueError):
        enqueue(remember, queue="nope")


def test_with_redis_the_job_goes_to_the_rq_queue(settings, redis_url):
    from pulse import create_app

    app = create_app({**settings, "REDIS_URL": redis_url})
    with app.app_context():
        connection = redis_connection()
        connection.flushdb()
        enqueue(remember, "queued", queue="emails")
        assert Queue("emails", connection=connection).count == 0
        db.session.commit()
        queue = Queue("emails", connection=connection)
        assert queue.count == 1
        job = queue.jobs[0]
        assert job.func_name == "tests.integration.test_jobs.remember"
        assert job.args == ("queued",)
        assert CALLS == []
        db.session.remove()


def test_retention_prunes_old_rows_only(app):
    from pulse.jobs.maintenance import prune_expired

    now = utcnow()
    db.session.add_all(
        [
            AuditLog(action="old", created_at=now - timedelta(days=400)),
            AuditLog(action="new", created_at=now - timedelta(days=5)),
            IdempotencyRecord(
                owner="key:1", key="a", fingerprint="f", created_at=now - timedelta(hours=30)
            ),
            IdempotencyRecord(owner="key:1", key="b", fingerprint="f", created_at=now),
            DailySalt(day=now.date() - timedelta(days=3), salt=b"x" * 32),
            DailySalt(day=now.date(), salt=b"y" * 32),
        ]
    )
    db.session.commit()
    assert prune_expired() == {"idempotency_records": 1, "audit_logs": 1, "daily_salts": 1}
    assert [a.action for a in db.session.scalars(db.select(AuditLog))] == ["new"]


def test_cron_endpoint_needs_the_secret(settings):
    from pulse import create_app

    app = create_app({**settings, "CRON_SECRET": "s3cret-value"})
    with app.app_context():
        client = app.test_client()
        assert client.post("/api/cron/retention").status_code == 401
        wrong = client.post("/api/cron/retention", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.post("/api/cron/retention", headers={"Authorization": "Bearer s3cret-value"})
        assert ok.status_code == 200
        assert ok.get_json()["pruned"] == {
            "idempotency_records": 0,
            "audit_logs": 0,
            "daily_salts": 0,
        }
        db.session.remove()
