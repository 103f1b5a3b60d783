"""`pulse worker` and `pulse cron`: RQ processes that run jobs inside the app context."""

from __future__ import annotations

import gc
import os
import signal
import threading

from flask import Flask

from pulse.extensions import db
from pulse.ingest.buffer import Drainer
from pulse.jobs import QUEUES, redis_connection


def run_worker(app: Flask, queues: list[str] | None = None, burst: bool = False) -> bool:
    """Work the queues; forked work horses inherit the pushed app context."""
    from rq import Worker

    if not app.config.get("REDIS_URL"):
        raise SystemExit("pulse worker needs REDIS_URL (without it, jobs run in-process).")
    # RQ installs its SIGTERM handler only after registering and starting its scheduler;
    # a SIGTERM in that second (a deploy right after a start) would kill the process
    # outright. Remember it instead, and hand it to RQ once RQ listens.
    early_stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: early_stop.set())

    class PulseWorker(Worker):
        def _install_signal_handlers(self) -> None:
            super()._install_signal_handlers()
            if early_stop.is_set():
                self._stop_requested = True  # the work loop stops before its first job

    connection = redis_connection(app)

    def reset_forked_child() -> None:
        # The early-stop handler belongs to this process. A forked child (RQ's scheduler
        # process, a work horse) that kept it would swallow a SIGTERM arriving before
        # it installs its own handlers, and the worker's teardown would wait on it forever.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # A forked child must not share the parent's pooled database connections.
        with app.app_context():
            db.engine.dispose(close=False)

    os.register_at_fork(after_in_child=reset_forked_child)
    # The app, its imports and the detection lists live as long as the process: keep
    # them out of the collector's full passes, which the drainer's few dicts per event
    # otherwise trigger over and over (bench/drain.py: about 8 us per event). Forked
    # work horses also share these pages longer.
    gc.freeze()
    drainer = None if burst else Drainer(app).start()
    try:
        with app.app_context():
            worker = PulseWorker(queues or list(QUEUES), connection=connection)
            return worker.work(burst=burst, with_scheduler=True)
    finally:
        # SIGTERM: RQ finishes its job, then the drainer finishes its batch.
        try:
            if drainer is not None:
                drainer.stop()
        finally:
            ignore_late_stop_signals()


def ignore_late_stop_signals() -> None:
    """Ignore SIGTERM and SIGINT once the process has nothing left to stop.

    A supervisor may repeat its SIGTERM. Python puts the default action back on the
    signals it handles while the interpreter shuts down, so a repeat landing then
    would kill a process that had already finished cleanly, and report it as killed
    (exit -15). An ignored signal stays ignored through that shutdown.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


def run_cron(app: Flask) -> None:
    """Enqueue the periodic jobs on their schedules until stopped."""
    from rq.cron import CronScheduler

    from pulse.jobs.periodic import register_all

    if not app.config.get("REDIS_URL"):
        raise SystemExit("pulse cron needs REDIS_URL.")

    class PulseCronScheduler(CronScheduler):
        def _request_stop(self, signum: int, frame: object) -> None:
            # Stopping only unregisters the scheduler: a repeated signal has nothing to
            # force, and raised again during that teardown it would end in a traceback.
            ignore_late_stop_signals()
            super()._request_stop(signum, frame)

    scheduler = PulseCronScheduler(
        connection=redis_connection(app), name=f"pulse-cron-{os.getpid()}"
    )
    register_all(scheduler)
    try:
        scheduler.start()
    finally:
        ignore_late_stop_signals()
