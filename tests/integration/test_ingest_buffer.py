"""With Redis: a 202 means the events are in the Redis buffer; a drainer stores them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import pytest
import redis
from flask import Flask

from pulse import create_app
from pulse.extensions import db
from pulse.ingest import buffer
from pulse.ingest.sites import clear_cache
from pulse.models import Event
from tests.conftest import _empty_tables
from tests.factories import make_tenant
from tests.integration.test_ingest import BROWSER, pageview, send


@contextmanager
def redis_app(settings, redis_url, **overrides) -> Iterator[Flask]:
    """An app buffering in the (flushed) test Redis, in its app context, emptied after."""
    redis.Redis.from_url(redis_url).flushdb()
    # The test Redis keeps nothing on disk: buffer in it anyway.
    config = {**settings, "REDIS_URL": redis_url, "INGEST_BUFFER_REQUIRE_AOF": False}
    app = create_app({**config, **overrides})
    with app.app_context():
        clear_cache()
        yield app
        db.session.remove()
        _empty_tables()
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def buffered_app(settings, redis_url):
    with redis_app(settings, redis_url) as app:
        yield app


def count() -> int:
    db.session.expire_all()
    return db.session.scalar(db.select(db.func.count()).select_from(Event))


def test_accepted_events_wait_in_redis_until_drained(buffered_app):
    t = make_tenant("alpha")
    client = buffered_app.test_client()
    for n in range(3):
        response = send(
            client, {"site": t.site.site_key, "events": [pageview(f"/{n}", id=f"e{n}")]}
        )
        assert response.status_code == 202
    assert buffer.pending() == 3
    assert count() == 0
    assert buffer.drain_all(buffered_app) == 3
    assert count() == 3 and buffer.pending() == 0
    # Re-sending the same ids after draining stores nothing new.
    send(client, {"site": t.site.site_key, "events": [pageview("/0", id="e0")]})
    assert buffer.drain_all(buffered_app) == 0 and count() == 3


def test_a_crashed_drainers_batch_is_recovered(buffered_app):
    t = make_tenant("alpha")
    client = buffered_app.test_client()
    send(client, {"site": t.site.site_key, "events": [pageview("/a", id="a1")]})
    connection = buffer.connection()
    # A drainer took the item and died before committing (no heartbeat left).
    connection.lmove(buffer.QUEUE, buffer.PROCESSING + "dead", "LEFT", "RIGHT")
    assert buffer.pending() == 0
    assert buffer.drain_all(buffered_app) == 1
    assert count() == 1
    assert not connection.exists(buffer.PROCESSING + "dead")


def test_items_are_plain_json_rows(buffered_app):
    t = make_tenant("alpha")
    send(buffered_app.test_client(), {"site": t.site.site_key, "events": [pageview()]})
    [item] = buffer.connection().lrange(buffer.QUEUE, 0, -1)
    [row] = orjson.loads(item)
    assert row["pathname"] == "/pricing" and "81.2.69.142" not in item.decode()


def test_when_redis_is_down_events_are_written_directly(settings):
    app = create_app({**settings, "REDIS_URL": "redis://127.0.0.1:1/0"})
    with app.app_context():
        clear_cache()
        try:
            t = make_tenant("alpha")
            response = send(
                app.test_client(),
                {"site": t.site.site_key, "events": [pageview()]},
                headers=BROWSER,
            )
            assert response.status_code == 202
            assert count() == 1
        finally:
            db.session.remove()
            _empty_tables()


def test_a_batch_is_claimed_whole_and_a_failed_one_is_finished_first(buffered_app, monkeypatch):
    t = make_tenant("alpha")
    client = buffered_app.test_client()
    for n in range(30):
        send(client, {"site": t.site.site_key, "events": [pageview(f"/{n}", id=f"e{n}")]})
    connection = buffer.connection()
    drainer = buffer.Drainer(buffered_app, max_items=10)
    assert len(drainer.claim()) == 10  # one script call: ten items moved at once
    assert connection.llen(drainer.processing) == 10 and buffer.pending() == 20

    def fail(rows):
        raise RuntimeError("database down")

    monkeypatch.setattr("pulse.ingest.store.write", fail)
    with pytest.raises(RuntimeError):
        drainer.drain_once(block_seconds=0.01)
    # The failed batch stays in our list, and is not grown by retrying it.
    with pytest.raises(RuntimeError):
        drainer.drain_once(block_seconds=0.01)
    assert connection.llen(drainer.processing) == 10 and buffer.pending() == 20
    monkeypatch.undo()
    assert drainer.drain_once(block_seconds=0.01) == 10
    assert not connection.exists(drainer.processing) and count() == 10
    assert buffer.drain_all(buffered_app) == 20 and count() == 30


def test_decode_parses_timestamps():
    [row] = buffer.decode([orjson.dumps([{"ts": "2026-03-02T09:00:00.250000+00:00"}])])
    assert row["ts"].isoformat() == "2026-03-02T09:00:00.250000+00:00"


def test_the_admit_script_survives_a_script_flush_and_a_killed_connection(buffered_app):
    """accept.admit holds its own connection: it reloads the script and reconnects."""
    from pulse.ingest import accept

    t = make_tenant("alpha")
    client = buffered_app.test_client()
    connection = buffer.connection()
    send(client, {"site": t.site.site_key, "events": [pageview("/a", id="k1")]})
    connection.script_flush()  # Redis restarted without its scripts: NOSCRIPT
    send(client, {"site": t.site.site_key, "events": [pageview("/b", id="k2")]})
    held = accept._held_connection(buffered_app.config["REDIS_URL"])
    killed = connection.client_kill_filter(addr=_local_address(held), skipme=True)
    assert killed == 1
    send(client, {"site": t.site.site_key, "events": [pageview("/c", id="k3")]})
    assert buffer.pending() == 3
    assert buffer.drain_all(buffered_app) == 3 and count() == 3


def _local_address(conn) -> str:
    host, port = conn._sock.getsockname()[:2]
    return f"{host}:{port}"


def test_a_claim_takes_what_is_there_after_the_item_already_held(buffered_app):
    t = make_tenant("alpha")
    client = buffered_app.test_client()
    for n in range(4):
        send(client, {"site": t.site.site_key, "events": [pageview(f"/{n}", id=f"h{n}")]})
    connection = buffer.connection()
    drainer = buffer.Drainer(buffered_app, max_items=50)
    drainer.unfinished = False
    first = connection.blmove(buffer.QUEUE, drainer.processing, 1, "LEFT", "RIGHT")
    items = drainer.claim()
    assert items[0] == first and len(items) == len(set(items)) == 4
    assert drainer.queue_emptied and buffer.pending() == 0
    assert connection.llen(drainer.processing) == 4
    assert connection.ttl(buffer.HEARTBEAT + drainer.name) > 0
    assert drainer.drain_once(block_seconds=0.01) == 4 and count() == 4


@pytest.fixture
def unix_socket_redis(tmp_path):
    """A redis-server of our own on a Unix socket, with an append-only file."""
    import shutil
    import subprocess

    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (the Redis of CI provides it)"
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--unixsocketperm",
            "700",
            "--dir",
            str(tmp_path),
            "--save",
            "",
            "--appendonly",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(unix_socket_path=str(sock))
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # polling for start-up, not ordering
        yield f"unix://{sock}?db=0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_redis_on_a_unix_socket_buffers_and_limits(settings, unix_socket_redis):
    """REDIS_URL=unix://... serves the buffer, the admit script and Flask-Limiter alike."""
    overrides = {
        "INGEST_BUFFER_REQUIRE_AOF": True,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": unix_socket_redis,
    }
    with redis_app(settings, unix_socket_redis, **overrides) as app:
        assert app.config["RATELIMIT_STORAGE_URI"].startswith("redis+unix://")
        t = make_tenant("alpha")
        client = app.test_client()
        statuses = [
            send(
                client,
                {"site": t.site.site_key, "events": [pageview(f"/{n}", id=f"u{n}")]},
                path="/api/v1/track/batch",
            ).status_code
            for n in range(31)
        ]
        assert statuses == [202] * 30 + [429]  # seed 001: 30 batches a minute per IP
        assert buffer.pending() == 30
        assert buffer.drain_all(app) == 30 and count() == 30
        assert client.get("/api/health").status_code == 200


def test_drainers_count_each_other_and_wait_longer_on_an_empty_queue_together(buffered_app):
    """Two drainers that empty the queue each linger twice as long, so the queue is
    claimed as often as one drainer alone would, in batches as large."""
    t = make_tenant("alpha")
    client = buffered_app.test_client()
    first, second = buffer.Drainer(buffered_app), buffer.Drainer(buffered_app)
    send(client, {"site": t.site.site_key, "events": [pageview("/a", id="l1")]})
    assert second.drain_once(block_seconds=0.01) == 1  # its claim left a heartbeat
    send(client, {"site": t.site.site_key, "events": [pageview("/b", id="l2")]})
    lingered: list[float] = []

    class StopAfterTheFirstWait(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            lingered.append(timeout)
            self.set()
            return True

    first.stopping = StopAfterTheFirstWait()
    first.run()  # counts the drainers, stores the item, empties the queue, lingers
    assert first.drainers == 2 and count() == 2
    assert lingered == [buffer.LINGER_SECONDS * 2]
    second.stop()  # a stopped drainer takes its heartbeat away
    first.recover_orphans()
    assert first.drainers == 1
