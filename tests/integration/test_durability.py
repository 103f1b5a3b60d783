"""Nothing lost: every acknowledged tracking event ends up stored exactly once.

Real processes, nothing mocked: each test gets its own PostgreSQL database (created,
migrated with `pulse db upgrade`, dropped) and its own Redis (database 13 of the shared
server, emptied before and after under a lock key, or a `redis-server` of its own on a
free port), and starts `gunicorn wsgi:app -w 2 --graceful-timeout 30` and `pulse
worker` as subprocesses. Six client threads send N events, each with a unique id, as
single `POST /api/v1/track` requests and batches of 50, and retry anything that is not
a 202 with the same ids, like real trackers. In the middle of the stream the test
restarts gunicorn and the worker (SIGTERM), kills the worker while it holds a batch
(SIGKILL), or kills Redis while the drainer lags; then it waits, by bounded polling,
until the database holds N events and the Redis lists are empty, and checks that the
stored ids are exactly the sent ones. Only processes started here (and the children
they leave behind) are signalled, by PID.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import requests
from redis import Redis
from redis.exceptions import RedisError
from rq import Worker

from pulse.ingest.buffer import HEARTBEAT_TTL, PROCESSING, QUEUE
from tests.integration.test_worker import (
    ROOT,
    console_script,
    free_port,
    fresh_postgres_database,
    migrate,
    process_env,
    sigterm_until_exit,
)

REDIS_DB = 13  # conftest uses 15, test_worker 14; this module owns 13 and flushes it
N = 3000
BATCH = 50
SINGLE_SHARE = 0.4  # of the events, sent one per request; the rest in batches of 50
SENDERS = 6
SEND_SECONDS = 70  # a sender gives up retrying after this (the test then fails)
DOMAIN = "durable.example"
# The shared test Redis keeps nothing on disk. These settings let gunicorn buffer in it
# anyway (INGEST_BUFFER_REQUIRE_AOF=false: the opt-out proposed with the fix that makes
# Pulse refuse to acknowledge into a Redis without an append-only file; ignored before).
BUFFER_IN_SHARED_REDIS = {"RATELIMIT_ENABLED": "false", "INGEST_BUFFER_REQUIRE_AOF": "false"}
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
T = TypeVar("T")


# Processes ------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[1]), fields[19]) if fields[0] != "Z" else None


def descendants(pid: int) -> dict[int, str]:
    """The live processes below `pid` (RQ's scheduler child, gunicorn's workers), by start time."""
    parents: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append(int(entry.name))
            starts[int(entry.name)] = stat[1]
    found: dict[int, str] = {}
    todo = list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        found[child] = starts[child]
        todo.extend(parents.get(child, []))
    return found


def end_leftovers(processes: dict[int, str]) -> None:
    """Stop processes our processes started and left behind (same pid AND start time)."""

    def alive() -> list[int]:
        return [p for p, start in processes.items() if (_stat(p) or (0, ""))[1] == start]

    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in alive():
            os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while alive() and time.monotonic() < deadline:
            time.sleep(0.05)


class Stack:
    """gunicorn, `pulse worker` and maybe a redis-server: started here, stopped here."""

    def __init__(self, tmp: Path, env: dict[str, str], port: int) -> None:
        self.tmp, self.env, self.port = tmp, env, port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        name = f"{len(self.procs):02d}-{name}"
        with open(self.tmp / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                args, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.procs[name] = proc
        return proc

    def gunicorn(self) -> subprocess.Popen[bytes]:
        args = ["wsgi:app", "-w", "2", "--graceful-timeout", "30", "-b", f"127.0.0.1:{self.port}"]
        proc = self.start("gunicorn", [sys.executable, "-m", "gunicorn", *args])
        wait_for(lambda: self.answers(proc), 60, "gunicorn to answer /api/health", self)
        return proc

    def answers(self, proc: subprocess.Popen[bytes]) -> bool:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}\n{self.logs()}")
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/api/health", timeout=5).ok
        except requests.RequestException:
            return False

    def worker(self) -> subprocess.Popen[bytes]:
        """`pulse worker`, once it listens (RQ's signal handlers installed, drainer running)."""
        proc = self.start("worker", [console_script("pulse"), "worker"])
        redis = Redis.from_url(self.env["REDIS_URL"])

        def listening() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"pulse worker exited with {proc.returncode}\n{self.logs()}")
            return any(
                w.pid == proc.pid and w.get_state() == "idle" for w in Worker.all(connection=redis)
            )

        try:
            wait_for(listening, 60, "pulse worker to listen", self)
        finally:
            redis.close()
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        """Signal one of our processes and wait (bounded) for it, and its children, to exit."""
        children = descendants(proc.pid)
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            code = proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pid {proc.pid} did not exit within 45 s of signal {sig}\n{self.logs()}")
        end_leftovers(children)  # after a SIGKILL, RQ's scheduler process lives on
        return code

    def close(self) -> None:
        running = [p for p in self.procs.values() if p.poll() is None]
        children: dict[int, str] = {}
        for proc in running:
            children.update(descendants(proc.pid))
            proc.send_signal(signal.SIGCONT)  # in case a test left it stopped
            proc.terminate()
        for proc in running:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        end_leftovers(children)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} (pid {proc.pid}, exit {proc.poll()}; last 2500 chars) ---\n"
            + (self.tmp / f"{name}.log").read_text(errors="replace")[-2500:]
            for name, proc in self.procs.items()
        )


def wait_for(
    condition: Callable[[], T], timeout: float, what: str | Callable[[], str], stack: Stack
) -> T:
    """Poll every 50 ms until `condition()` is truthy; fail with the logs after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout} s waiting for {said}\n{stack.logs()}")
        time.sleep(0.05)


# Clients --------------------------------------------------------------------------------


def set_up_site(base: str) -> str:
    """Sign up, create an enterprise-tier team and a site over HTTP; the site key."""
    http_session = requests.Session()
    signup = http_session.post(
        f"{base}/api/v1/auth/signup",
        json={"email": "owner@durable.example", "password": "a long enough password"},
        timeout=10,
    )
    assert signup.status_code == 201, signup.text
    team = http_session.post(f"{base}/api/v1/teams", json={"name": "Durable"}, timeout=10)
    assert team.status_code == 201, team.text
    slug = team.json()["data"]["slug"]
    # The free tier's 2,000 events a minute per site would shape the stream.
    tier = http_session.patch(f"{base}/api/v1/teams/{slug}", json={"tier": "enterprise"})
    assert tier.status_code == 200, tier.text
    site = http_session.post(
        f"{base}/api/v1/teams/{slug}/sites", json={"name": "Durable", "domain": DOMAIN}, timeout=10
    )
    assert site.status_code == 201, site.text
    return site.json()["data"]["site_key"]


class Traffic:
    """N events with unique ids from SENDERS threads; each request retried until a 202."""

    def __init__(self, port: int, site_key: str, n: int = N, seed: int = 7) -> None:
        self.port, self.site_key = port, site_key
        self.ids = [f"ev-{k:05d}-{secrets.token_hex(4)}" for k in range(n)]
        singles = int(n * SINGLE_SHARE)
        plan = [[i] for i in self.ids[:singles]]
        plan += [self.ids[k : k + BATCH] for k in range(singles, n, BATCH)]
        random.Random(seed).shuffle(plan)
        self.plan = plan
        self.lock = threading.Lock()
        self.next = 0
        self.acked: set[str] = set()
        self.statuses: Counter[int] = Counter()  # every answer, retries included
        self.transport_errors: Counter[str] = Counter()
        self.failures: list[str] = []
        self.threads = [
            threading.Thread(target=self._send_all, daemon=True) for _ in range(SENDERS)
        ]
        self.deadline = time.monotonic() + SEND_SECONDS

    def start(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def acknowledged(self) -> int:
        with self.lock:
            return len(self.acked)

    def summary(self) -> str:
        with self.lock:
            return (
                f"{len(self.acked)}/{len(self.ids)} acknowledged in {len(self.plan)} requests; "
                f"answers {dict(self.statuses)}; transport errors {dict(self.transport_errors)}"
            )

    def done(self) -> bool:
        return not any(t.is_alive() for t in self.threads)

    def _body(self, ids: list[str]) -> tuple[str, dict[str, Any]]:
        events = [{"id": i, "name": "pageview", "url": f"https://{DOMAIN}/p{i[3:8]}"} for i in ids]
        if len(ids) == 1:
            return "/api/v1/track", {"site": self.site_key, **events[0]}
        return "/api/v1/track/batch", {"site": self.site_key, "events": events}

    def _send_all(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            with self.lock:
                if self.next >= len(self.plan):
                    break
                ids = self.plan[self.next]
                self.next += 1
            path, body = self._body(ids)
            payload = json.dumps(body).encode()
            headers = {
                "Content-Type": "application/json",
                "Origin": f"https://{DOMAIN}",
                "User-Agent": CHROME,
                "Accept": "*/*",
                "Accept-Language": "en-GB,en;q=0.9",
            }
            attempt = 0
            while True:
                attempt += 1
                status, answer = 0, b""
                try:
                    conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                    conn.request("POST", path, payload, headers)
                    response = conn.getresponse()
                    status, answer = response.status, response.read()
                    if response.will_close:
                        conn.close()
                        conn = None
                except (OSError, http.client.HTTPException) as exc:
                    if conn is not None:
                        conn.close()
                    conn = None
                    with self.lock:
                        self.transport_errors[type(exc).__name__] += 1
                if status:
                    with self.lock:
                        self.statuses[status] += 1
                if status == 202:
                    reply = json.loads(answer)
                    stored = reply["queued"] is True or reply["queued"] == len(ids)
                    if not stored or reply.get("skipped") or reply.get("errors"):
                        with self.lock:
                            self.failures.append(f"202 without every event queued: {reply}")
                    with self.lock:
                        self.acked.update(ids)
                    break
                if time.monotonic() > self.deadline:
                    with self.lock:
                        self.failures.append(f"gave up on {ids[0]} after {attempt} attempts")
                    break
                # Back off like a tracker: 20 ms, 40 ms, ... at most 300 ms.
                time.sleep(min(0.3, 0.02 * attempt))
        if conn is not None:
            conn.close()


# Checks ---------------------------------------------------------------------------------


def stored(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*), count(DISTINCT event_uid) FROM events").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def stored_ids(database_url: str) -> list[str]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return [r[0] for r in conn.execute("SELECT event_uid FROM events").fetchall()]


def buffered(redis: Redis) -> int:
    """Items still in the queue or in any drainer's processing list."""
    total = int(redis.llen(QUEUE))
    for key in redis.scan_iter(match=PROCESSING + "*"):
        total += int(redis.llen(key)) or 1  # an empty list key would not exist; count it
    return total


def processing_lists(redis: Redis) -> dict[str, int]:
    return {k.decode(): int(redis.llen(k)) for k in redis.scan_iter(match=PROCESSING + "*")}


def wait_until_all_stored(
    database_url: str, redis: Redis, traffic: Traffic, stack: Stack, timeout: float
) -> None:
    """Bounded: all requests answered 202, N rows in the database, the buffer empty."""
    wait_for(traffic.done, SEND_SECONDS + 10, "the senders to finish", stack)
    assert not traffic.failures, traffic.failures[:5]
    assert traffic.acked == set(traffic.ids)
    n = len(traffic.ids)
    wait_for(
        lambda: stored(database_url)[0] >= n and buffered(redis) == 0,
        timeout,
        lambda: (
            f"{n} acknowledged events in the database and empty Redis lists "
            f"(now {stored(database_url)}, queue {redis.llen(QUEUE)}, "
            f"processing {processing_lists(redis)})"
        ),
        stack,
    )


def assert_exactly_the_sent_events(database_url: str, traffic: Traffic) -> None:
    count, distinct = stored(database_url)
    n = len(traffic.ids)
    assert (count, distinct) == (n, n), f"{count} rows, {distinct} distinct ids; sent {n}"
    assert sorted(stored_ids(database_url)) == sorted(traffic.ids)


# Fixtures -------------------------------------------------------------------------------


LOCK = "pulse:test:durability:lock"


def _empty(conn: Redis) -> None:
    """Delete every key of our database number except the lock."""
    for key in conn.scan_iter(count=1000):
        if key != LOCK.encode():
            conn.delete(key)


@pytest.fixture
def redis_db(redis_url: str) -> Iterator[str]:
    """This module's database number on the shared Redis: ours alone, empty before and after.

    Two runs of this module at once (two checkouts, two agents) would drain each
    other's queue; a lock key makes the second wait for the first.
    """
    url = urlunsplit(urlsplit(redis_url)._replace(path=f"/{REDIS_DB}"))
    conn = Redis.from_url(url)
    token = secrets.token_hex(8)
    deadline = time.monotonic() + 300
    while not conn.set(LOCK, token, nx=True, ex=300):
        if time.monotonic() > deadline:
            pytest.fail(f"Redis db {REDIS_DB} stayed locked by another run for 300 s")
        time.sleep(0.2)
    try:
        _empty(conn)
        yield url
    finally:
        _empty(conn)
        if conn.get(LOCK) == token.encode():
            conn.delete(LOCK)
        conn.close()


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_url) as url:
        yield url


def make_stack(tmp_path: Path, database: str, redis: str, **settings: str) -> Stack:
    port = free_port()
    env = process_env(
        DATABASE_URL=database,
        REDIS_URL=redis,
        BASE_URL=f"http://127.0.0.1:{port}",
        INGEST_SPOOL_DIR=str(tmp_path / "spool"),
        **settings,
    )
    migrate(env)
    return Stack(tmp_path, env, port)


# Tests ----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
def test_sigterm_to_gunicorn_and_worker_mid_stream_loses_nothing(
    tmp_path: Path, database: str, redis_db: str
) -> None:
    stack = make_stack(tmp_path, database, redis_db, **BUFFER_IN_SHARED_REDIS)
    redis = Redis.from_url(redis_db)
    try:
        gunicorn = stack.gunicorn()
        worker = stack.worker()
        traffic = Traffic(stack.port, set_up_site(f"http://127.0.0.1:{stack.port}")).start()
        wait_for(lambda: traffic.acknowledged() >= N // 3, 60, "a third acknowledged", stack)

        # Both at once, as a deploy or a host shutdown does; both must exit cleanly.
        gunicorn.send_signal(signal.SIGTERM)
        worker.send_signal(signal.SIGTERM)
        assert stack.stop(gunicorn) == 0, stack.logs()
        assert stack.stop(worker) == 0, stack.logs()
        during_restart = traffic.acknowledged()
        assert during_restart < N, "the stream ended before the restart: raise N"
        # A stopped drainer hands back nothing half-done: no processing list is left.
        assert processing_lists(redis) == {}, stack.logs()

        stack.gunicorn()
        stack.worker()
        wait_until_all_stored(database, redis, traffic, stack, timeout=60)
        print(traffic.summary())
        assert_exactly_the_sent_events(database, traffic)
        # Restarting costs retries (refused connections), never an error answer.
        assert set(traffic.statuses) == {202}, traffic.statuses
    finally:
        stack.close()
        redis.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_sent_sigterm_over_and_over_still_exits_cleanly(
    tmp_path: Path, database: str, redis_db: str
) -> None:
    """A supervisor that repeats its SIGTERM until the worker is gone.

    A repeat during interpreter shutdown used to meet Python's restored default action
    and turn a finished, clean exit into "killed by SIGTERM" (-15).
    """
    stack = make_stack(tmp_path, database, redis_db, **BUFFER_IN_SHARED_REDIS)
    try:
        worker = stack.worker()
        signals = sigterm_until_exit(worker, seconds=45, every=0.02)
        assert worker.poll() == 0, f"exit {worker.poll()} after {signals} SIGTERMs\n{stack.logs()}"
        assert signals > 10  # the repeats covered the whole shutdown, not just its start
    finally:
        stack.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_worker_killed_mid_batch_leaves_a_list_that_the_next_worker_stores(
    tmp_path: Path, database: str, redis_db: str
) -> None:
    stack = make_stack(tmp_path, database, redis_db, **BUFFER_IN_SHARED_REDIS)
    redis = Redis.from_url(redis_db)
    try:
        stack.gunicorn()
        worker = stack.worker()
        traffic = Traffic(stack.port, set_up_site(f"http://127.0.0.1:{stack.port}")).start()
        wait_for(lambda: traffic.acknowledged() >= N // 4, 60, "a quarter acknowledged", stack)

        # Freeze the worker (SIGSTOP) until we catch it holding a batch (claimed, not
        # released), then SIGKILL it: the batch stays in its processing list, and its
        # heartbeat key stays alive for up to HEARTBEAT_TTL seconds.
        orphan: dict[str, int] = {}
        deadline = time.monotonic() + 30
        while not orphan and time.monotonic() < deadline:
            worker.send_signal(signal.SIGSTOP)
            orphan = {k: n for k, n in processing_lists(redis).items() if n}
            if not orphan:
                worker.send_signal(signal.SIGCONT)
                time.sleep(0.005)
        assert orphan, "never caught the drainer holding a batch"
        assert traffic.acknowledged() < N, "the stream ended before the kill: raise N"
        assert stack.stop(worker, signal.SIGKILL) == -signal.SIGKILL
        assert processing_lists(redis) == orphan

        # A new worker, started at once, must store the orphaned batch: with the dead
        # drainer's heartbeat still alive, that can take up to HEARTBEAT_TTL seconds.
        stack.worker()
        wait_until_all_stored(database, redis, traffic, stack, timeout=HEARTBEAT_TTL + 30)
        print(traffic.summary())
        assert_exactly_the_sent_events(database, traffic)
        assert set(traffic.statuses) == {202}, traffic.statuses
    finally:
        stack.close()
        redis.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_web_process_killed_with_events_in_its_spool_loses_none_of_them(
    tmp_path: Path, database: str, redis_db: str
) -> None:
    """A gunicorn worker is SIGKILLed while its spool holds acknowledged events that it
    has not shipped: the file outlives it, and another process ships it."""
    stack = make_stack(tmp_path, database, redis_db, **BUFFER_IN_SHARED_REDIS)
    redis = Redis.from_url(redis_db)
    try:
        gunicorn = stack.gunicorn()
        stack.worker()
        traffic = Traffic(stack.port, set_up_site(f"http://127.0.0.1:{stack.port}")).start()
        wait_for(lambda: traffic.acknowledged() >= N // 4, 60, "a quarter acknowledged", stack)

        # Freeze one web process at a time (SIGSTOP: its shipper stops too) until one is
        # caught with a spool file that holds something, then SIGKILL it.
        caught: list[Path] = []
        victim = 0
        deadline = time.monotonic() + 30
        while not caught and time.monotonic() < deadline:
            for pid in descendants(gunicorn.pid):
                os.kill(pid, signal.SIGSTOP)
                caught = [p for p in (tmp_path / "spool").glob(f"*/{pid}-*.spool") if _size(p)]
                if caught:
                    victim = pid
                    break
                os.kill(pid, signal.SIGCONT)
            time.sleep(0.005)
        assert caught, "never caught a web process with events in its spool"
        assert traffic.acknowledged() < N, "the stream ended before the kill: raise N"
        os.kill(victim, signal.SIGKILL)

        # gunicorn replaces the process; the others (or the drainer) ship its file. (The
        # file may hold only a request the process never answered, which the client sent
        # again: so wait for the file itself, not just for the count.)
        wait_for(
            lambda: not any(path.exists() for path in caught),
            30,
            "the killed process's spool to be shipped",
            stack,
        )
        wait_until_all_stored(database, redis, traffic, stack, timeout=60)
        print(traffic.summary(), f"; killed pid {victim} holding {[p.name for p in caught]}")
        assert_exactly_the_sent_events(database, traffic)
        # The requests the killed process was answering were retried, never refused.
        assert set(traffic.statuses) == {202}, traffic.statuses
    finally:
        stack.close()
        redis.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # shipped and removed since the glob
        return 0


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("persistence", ["none", "aof"])
def test_when_redis_dies_acknowledged_events_are_still_stored(
    tmp_path: Path, database: str, redis_url: str, persistence: str
) -> None:
    """Redis is SIGKILLed while the drainer lags behind; later a new one starts on its port.

    While it is down, gunicorn must answer 202 (rows written in the request) or 503,
    never 202 for a row that is then lost. `none` is a Redis that keeps nothing on
    disk; `aof` one with an append-only file, restarted from the same folder.
    """
    redis_port = free_port()
    redis_args = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"]
    redis_args += ["--dir", str(tmp_path), "--daemonize", "no", "--save", ""]
    if persistence == "none":
        redis_args += ["--appendonly", "no"]
    else:
        redis_args += ["--appendonly", "yes", "--appendfsync", "always"]
    own_redis = f"redis://127.0.0.1:{redis_port}/0"
    # Per-IP limits off for the client (loopback); the site budget, in Redis, stays on.
    stack = make_stack(tmp_path, database, own_redis, INGEST_IP_WHITELIST="127.0.0.1/32")
    redis = Redis.from_url(own_redis, socket_timeout=2, socket_connect_timeout=1)

    def redis_up() -> bool:
        try:
            return bool(redis.ping())
        except RedisError:
            return False

    try:
        server = stack.start("redis", redis_args)
        wait_for(redis_up, 20, "our redis-server", stack)
        stack.gunicorn()
        worker = stack.worker()
        traffic = Traffic(stack.port, set_up_site(f"http://127.0.0.1:{stack.port}")).start()
        wait_for(lambda: traffic.acknowledged() >= N // 3, 60, "a third acknowledged", stack)

        # The drainer lags (a slow database, a long batch) while events are acknowledged;
        # then Redis dies. Whatever was acknowledged into its queue must survive that.
        worker.send_signal(signal.SIGSTOP)
        lagging_from = traffic.acknowledged()
        wait_for(
            lambda: traffic.acknowledged() >= lagging_from + 200,
            30,
            "200 events acknowledged while the drainer lags",
            stack,
        )
        backlog = redis.llen(QUEUE)
        stack.stop(server, signal.SIGKILL)
        worker.send_signal(signal.SIGCONT)
        killed_at = traffic.acknowledged()
        statuses_before = Counter(traffic.statuses)
        wait_for(
            lambda: traffic.acknowledged() >= min(N, killed_at + N // 3),
            60,
            lambda: (
                "a third more acknowledged with Redis down (written in the request): "
                + traffic.summary()
            ),
            stack,
        )
        assert traffic.acknowledged() < N, "the stream ended before Redis came back: raise N"
        while_down = traffic.statuses - statuses_before

        # Redis comes back on the same port (empty, or from its append-only file).
        stack.start("redis", redis_args)
        wait_for(redis_up, 20, "our redis-server, restarted", stack)
        wait_until_all_stored(database, redis, traffic, stack, timeout=60)
        print(traffic.summary(), f"; {backlog} requests in the queue when Redis died")
        assert_exactly_the_sent_events(database, traffic)
        assert while_down[202] > 0, while_down
        assert set(traffic.statuses) <= {202, 503}, traffic.statuses
    finally:
        stack.close()
        redis.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_two_workers_drain_one_queue_and_count_each_event_once_into_its_visit(
    tmp_path: Path, database: str, redis_db: str
) -> None:
    """`pulse worker` scales out: two drainers on one queue, all the traffic from one
    visitor, so their batches touch the same visit and have to take turns on it."""
    stack = make_stack(tmp_path, database, redis_db, **BUFFER_IN_SHARED_REDIS)
    redis = Redis.from_url(redis_db)
    try:
        stack.gunicorn()
        workers = [stack.worker(), stack.worker()]
        traffic = Traffic(stack.port, set_up_site(f"http://127.0.0.1:{stack.port}")).start()
        wait_until_all_stored(database, redis, traffic, stack, timeout=60)
        assert_exactly_the_sent_events(database, traffic)
        with psycopg.connect(database, autocommit=True) as conn:
            visits = conn.execute(
                "SELECT v.id, v.pageviews, count(e.id) FROM visits AS v "
                "LEFT JOIN events AS e ON e.session_id = v.id GROUP BY v.id"
            ).fetchall()
        # Every pageview counted once, into the visit its row names.
        assert sum(pageviews for _, pageviews, _ in visits) == N, visits
        assert all(pageviews == n for _, pageviews, n in visits), visits
        assert all(w.poll() is None for w in workers), stack.logs()
    finally:
        stack.close()
        redis.close()
