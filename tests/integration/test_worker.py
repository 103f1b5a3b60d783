"""Jobs in real processes: gunicorn enqueues, `pulse worker` delivers, `pulse cron` schedules.

Nothing here is mocked. Each test gets its own PostgreSQL database (created and dropped
here) and its own Redis database number (flushed before and after), starts the
processes it needs with `subprocess.Popen`, and stops exactly those in `finally`.
Waits are bounded polls on a condition, never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
from aiosmtpd.controller import Controller
from psycopg import sql
from redis import Redis
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.job import Job
from rq.registry import FinishedJobRegistry

ROOT = Path(__file__).resolve().parents[2]
REDIS_DB = 14  # conftest's redis_url uses 15; this module owns 14 and flushes it
T = TypeVar("T")


# Helpers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def console_script(name: str) -> str:
    """The venv's console script next to this interpreter (else the one on PATH)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed"
    return found


def wait_for(
    condition: Callable[[], T | None], timeout: float, what: str, *, procs: Processes | None = None
) -> T:
    """Poll `condition` every 50 ms until it returns something truthy, or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if procs is not None:
            procs.check_alive()
        if time.monotonic() > deadline:
            detail = procs.logs() if procs is not None else ""
            pytest.fail(f"timed out after {timeout}s waiting for {what}\n{detail}")
        time.sleep(0.05)


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped (even if still in use) at the end."""
    admin_url = server_url.replace("+psycopg", "")
    name = f"pulse_it_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class Processes:
    """The subprocesses one test started; `stop()` ends exactly these."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        try:
            proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        finally:
            log.close()
        self.started[name] = proc
        return proc

    def check_alive(self) -> None:
        for name, proc in self.started.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited early with {proc.returncode}\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for name in self.started:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
            parts.append(f"--- {name} (last 3000 chars) ---\n{text[-3000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in self.started.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.started.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def sigterm_until_exit(proc: subprocess.Popen[bytes], seconds: float, every: float = 0.01) -> int:
    """SIGTERM `proc` every `every` s until it exits (as a repeating supervisor would), for
    at most `seconds`; how many signals it took."""
    deadline = time.monotonic() + seconds
    signals = 0
    while proc.poll() is None and time.monotonic() < deadline:
        proc.send_signal(signal.SIGTERM)
        signals += 1
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=every)
    return signals


class Mailbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """This module's Redis database, empty before and after each test."""
    url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{REDIS_DB}"))
    conn = Redis.from_url(url)
    conn.flushdb()
    try:
        yield url
    finally:
        conn.flushdb()
        conn.close()


@pytest.fixture
def fresh_database(postgres_url: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_url) as url:
        yield url


def process_env(**settings: str) -> dict[str, str]:
    """The environment of a Pulse process: the caller's, minus any Pulse settings, plus these."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "SMTP_HOST", "SMTP_PORT"}
        and not k.startswith(("SMTP_", "PULSE_", "FLASK_"))
    }
    env.update(
        {
            "PULSE_ENV": "development",
            "SECRET_KEY": secrets.token_urlsafe(32),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(settings)
    return env


def migrate(env: dict[str, str]) -> None:
    result = subprocess.run(
        [console_script("pulse"), "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# Tests ----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
def test_invitation_email_is_sent_by_the_worker_process(
    tmp_path: Path, fresh_database: str, redis_db: str
) -> None:
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    procs = Processes(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = process_env(
        DATABASE_URL=fresh_database,
        REDIS_URL=redis_db,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_FROM="Pulse <pulse@example.com>",
        BASE_URL=base,
    )
    try:
        migrate(env)
        procs.start(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "wsgi:app", "-b", f"127.0.0.1:{port}", "-w", "2"],
            env,
        )
        worker = procs.start("worker", [console_script("pulse"), "worker"], env)
        conn = Redis.from_url(redis_db)

        def healthy() -> dict[str, Any] | None:
            try:
                response = requests.get(f"{base}/api/health", timeout=5)
            except (requests.ConnectionError, requests.Timeout):
                return None
            return response.json() if response.status_code == 200 else None

        health = wait_for(healthy, 60, "gunicorn to answer /api/health", procs=procs)
        assert health["jobs"] == "rq" and health["redis"] is True and health["email"] is True
        wait_for(
            lambda: any(w.pid == worker.pid for w in Worker.all(connection=conn)),
            60,
            "the worker to register with Redis",
            procs=procs,
        )

        http = requests.Session()
        signup = http.post(
            f"{base}/api/v1/auth/signup",
            json={"email": "owner@example.com", "password": "a long enough password"},
            timeout=10,
        )
        assert signup.status_code == 201, signup.text
        team = http.post(f"{base}/api/v1/teams", json={"name": "Worker Test"}, timeout=10)
        assert team.status_code == 201, team.text
        slug = team.json()["data"]["slug"]
        invite = http.post(
            f"{base}/api/v1/teams/{slug}/members",
            json={"email": "new@example.com", "role": "viewer"},
            timeout=10,
        )
        assert invite.status_code == 202, invite.text
        body = invite.json()["data"]
        assert body["status"] == "invited"
        invite_url = body["invitation"]["invite_url"]
        assert invite_url.startswith(f"{base}/invite/")

        recipients, message = wait_for(
            lambda: mailbox.received[0] if mailbox.received else None,
            60,
            "the invitation email to reach the SMTP server",
            procs=procs,
        )
        assert recipients == ["new@example.com"]
        assert message["To"] == "new@example.com"
        assert "Worker Test" in message["Subject"]
        assert invite_url in message.get_content()
        assert len(mailbox.received) == 1

        # The job went through the `emails` queue and ran in the worker, not in this process
        # nor in gunicorn.
        finished = FinishedJobRegistry("emails", connection=conn)
        job_ids = wait_for(finished.get_job_ids, 30, "the job to be marked finished", procs=procs)
        assert len(job_ids) == 1
        job = Job.fetch(job_ids[0], connection=conn)
        assert job.origin == "emails"
        assert job.func_name == "pulse.jobs.emails.send_invitation"
        result = job.latest_result()
        assert result is not None and result.return_value is True
        runner = [w for w in Worker.all(connection=conn) if w.name == result.worker_name]
        assert len(runner) == 1, (result.worker_name, Worker.all(connection=conn))
        assert runner[0].pid == worker.pid
        assert worker.pid != os.getpid()
    finally:
        procs.stop()
        smtp.stop()


@pytest.mark.redis
def test_pulse_cron_registers_the_periodic_jobs(tmp_path: Path, redis_db: str) -> None:
    from pulse.jobs.periodic import PERIODIC_JOBS, register_all

    expected = {(f"{p.func.__module__}.{p.func.__name__}", p.queue, p.cron) for p in PERIODIC_JOBS}
    assert ("pulse.jobs.maintenance.purge_expired_records", "periodic", "17 * * * *") in expected
    conn = Redis.from_url(redis_db)

    # register_all on a CronScheduler of our own ...
    scheduler = CronScheduler(connection=conn, name="pulse-test")
    register_all(scheduler)
    assert {(j.func_name, j.queue_name, j.cron) for j in scheduler.get_jobs()} == expected

    # ... and in the real `pulse cron` process, as rq's registry of cron schedulers sees it.
    procs = Processes(tmp_path)
    env = process_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'cron.db'}", REDIS_URL=redis_db, BASE_URL="http://x"
    )
    try:
        cron = procs.start("cron", [console_script("pulse"), "cron"], env)

        def registered() -> CronScheduler | None:
            for found in CronScheduler.all(conn):
                if found.name == f"pulse-cron-{cron.pid}":
                    return found
            return None

        found = wait_for(registered, 60, "pulse cron to register", procs=procs)
        assert found.pid == cron.pid
        jobs = {(j.func_name, j.queue_name, j.cron) for j in found.get_jobs()}
        assert jobs == expected
    finally:
        procs.stop()
    assert cron.returncode == 0, procs.logs()
    # A stopped scheduler unregisters itself.
    assert all(s.name != f"pulse-cron-{cron.pid}" for s in CronScheduler.all(conn))


@pytest.mark.redis
def test_pulse_cron_sent_sigterm_over_and_over_exits_cleanly_and_unregisters(
    tmp_path: Path, redis_db: str
) -> None:
    """A supervisor repeating SIGTERM: the repeats must not cut the teardown short."""
    conn = Redis.from_url(redis_db)
    procs = Processes(tmp_path)
    env = process_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'cron.db'}", REDIS_URL=redis_db, BASE_URL="http://x"
    )
    try:
        cron = procs.start("cron", [console_script("pulse"), "cron"], env)
        name = f"pulse-cron-{cron.pid}"
        wait_for(
            lambda: any(s.name == name for s in CronScheduler.all(conn)),
            60,
            "pulse cron to register",
            procs=procs,
        )
        signals = sigterm_until_exit(cron, seconds=30)
    finally:
        procs.stop()
    assert cron.returncode == 0, f"exit {cron.returncode} after {signals} SIGTERMs\n{procs.logs()}"
    assert all(s.name != name for s in CronScheduler.all(conn))


@pytest.mark.postgres
@pytest.mark.redis
def test_purge_job_run_by_a_burst_worker_prunes_old_rows(
    tmp_path: Path, fresh_database: str, redis_db: str
) -> None:
    from pulse import create_app
    from pulse.extensions import db
    from pulse.jobs.maintenance import purge_expired_records
    from pulse.models import AuditLog, IdempotencyRecord, utcnow

    env = process_env(
        DATABASE_URL=fresh_database,
        REDIS_URL=redis_db,
        BASE_URL="http://x",
        AUDIT_LOG_RETENTION_DAYS="30",
    )
    migrate(env)

    now = utcnow()
    app = create_app(
        {
            "PULSE_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": fresh_database,
            "SECRET_KEY": "test",
            "REDIS_URL": None,
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    with app.app_context():
        db.session.add_all(
            [
                IdempotencyRecord(
                    owner="user:1", key="old", fingerprint="f", created_at=now - timedelta(hours=25)
                ),
                IdempotencyRecord(
                    owner="user:1", key="new", fingerprint="f", created_at=now - timedelta(hours=1)
                ),
                AuditLog(action="test.old", details={}, created_at=now - timedelta(days=31)),
                AuditLog(action="test.new", details={}, created_at=now - timedelta(days=29)),
            ]
        )
        db.session.commit()
        db.session.remove()
        db.engine.dispose()

    conn = Redis.from_url(redis_db)
    job = Queue("periodic", connection=conn).enqueue(purge_expired_records)
    result = subprocess.run(
        [console_script("pulse"), "worker", "--burst", "--queue", "periodic"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    job.refresh()
    assert job.get_status() == "finished", result.stdout + result.stderr
    assert job.latest_result().return_value == {
        "idempotency_records": 1,
        "audit_logs": 1,
        "daily_salts": 0,
    }
    assert job.latest_result().worker_name != ""
    with app.app_context():
        keys = db.session.scalars(db.select(IdempotencyRecord.key)).all()
        actions = db.session.scalars(db.select(AuditLog.action)).all()
        db.session.remove()
        db.engine.dispose()
    assert keys == ["new"]
    assert actions == ["test.new"]


EARLY_SIGTERM = """
import json, os, signal, sys
from rq.worker import Worker
from pulse import create_app
from pulse.jobs.worker import run_worker

original = Worker.bootstrap


def bootstrap(self, *args, **kwargs):
    original(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)  # inside RQ's start-up, before its own handlers


Worker.bootstrap = bootstrap
app = create_app(json.loads(sys.argv[1]))
run_worker(app)
print("stopped cleanly")
"""


# The scheduler process takes the worker's SIGTERM before it installs RQ's handlers:
# blocked from the fork on, the signal is held until the worker's teardown sends it,
# then let through.
SCHEDULER_TAKES_SIGTERM_EARLY = """
from rq.scheduler import RQScheduler



def hold_sigterm():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


os.register_at_fork(after_in_child=hold_sigterm)


def work(self):
    signal.sigwait({signal.SIGTERM})
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    os.kill(os.getpid(), signal.SIGTERM)
    print("scheduler survived SIGTERM", flush=True)
    os._exit(3)


RQScheduler.work = work
"""


@pytest.mark.parametrize("scheduler_early", [False, True], ids=["worker", "scheduler-too"])
def test_sigterm_during_worker_start_up_is_a_clean_stop(
    settings, redis_db: str, scheduler_early: bool
) -> None:
    """A deploy may stop a worker a moment after starting it: exit 0, not death by signal.

    The scheduler process must not inherit the worker's early-stop handler: swallowing
    the teardown's SIGTERM, it would run on while the worker waits for it (a CI hang).
    """
    config = {**settings, "REDIS_URL": redis_db}
    script = EARLY_SIGTERM
    if scheduler_early:
        head, tail = script.split("Worker.bootstrap = bootstrap")
        script = head + "Worker.bootstrap = bootstrap" + SCHEDULER_TAKES_SIGTERM_EARLY + tail
    # Its own process group, so that a hung worker is ended with its scheduler process.
    worker = subprocess.Popen(
        [sys.executable, "-c", script, json.dumps(config)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = worker.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        stdout, stderr = worker.communicate()
        pytest.fail(f"the worker did not stop within 120 s:\n{stdout[-3000:]}")
    result = subprocess.CompletedProcess(worker.args, worker.returncode, stdout, stderr)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "stopped cleanly" in result.stdout
    assert "scheduler survived SIGTERM" not in result.stdout
    if scheduler_early:
        assert "Scheduler for" in result.stdout + result.stderr  # the scheduler did start
