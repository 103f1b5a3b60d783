"""Background jobs: one `enqueue()`, RQ when REDIS_URL is set, in-process otherwise.

A job enqueued inside a transaction starts only after that transaction commits (and
is dropped if it rolls back), so a worker never looks for rows that are not there yet.
Queues are named by concern: `emails`, `webhooks`, `periodic`, `default`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from pulse.extensions import db

log = logging.getLogger(__name__)
QUEUES = ("emails", "webhooks", "default", "periodic")
PENDING = "pulse_pending_jobs"

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class JobCall:
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue: str


_process_app: Flask | None = None


def job(func: Callable[P, R]) -> Callable[P, R]:
    """Run a job function inside an app context, creating the app once per process."""

    @wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        global _process_app
        if has_app_context():
            return func(*args, **kwargs)
        if _process_app is None:
            from pulse import create_app

            _process_app = create_app()
        with _process_app.app_context():
            return func(*args, **kwargs)

    return run


def redis_connection(app: Flask | None = None):
    from redis import Redis

    app = app or current_app
    return Redis.from_url(app.config["REDIS_URL"])


def enqueue(func: Callable[..., Any], *args: Any, queue: str = "default", **kwargs: Any) -> None:
    """Run `func(*args, **kwargs)` in the background once the current transaction commits."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    session = db.session()
    if not session.in_transaction():
        session.begin()  # so a rollback before any SQL still drops the job
    session.info.setdefault(PENDING, []).append(JobCall(func, args, kwargs, queue))


def dispatch(call: JobCall, app: Flask) -> None:
    """Hand one job to RQ, or run it now in a fresh app context (its own session)."""
    if app.config.get("REDIS_URL"):
        from rq import Queue

        Queue(call.queue, connection=redis_connection(app)).enqueue(
            call.func, *call.args, **call.kwargs
        )
        return
    with app.app_context():
        try:
            call.func(*call.args, **call.kwargs)
        except Exception:
            # In-process mode has no failed-job registry: the log is the record.
            log.exception("in-process job %s failed", getattr(call.func, "__name__", call.func))
            db.session.rollback()


def _after_commit(session: Session) -> None:
    calls = session.info.pop(PENDING, None)
    if not calls:
        return
    app = current_app._get_current_object()
    for call in calls:
        dispatch(call, app)


def _after_rollback(session: Session) -> None:
    if not session.in_transaction():
        session.info.pop(PENDING, None)


def init_app(app: Flask) -> None:
    """Listen for commits once per process (the listeners are global to Session)."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_soft_rollback", lambda s, prev: _after_rollback(s))
