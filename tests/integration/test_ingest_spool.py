"""The ingest spool: requests far from their limits are spooled to a file, then shipped.

Against the real test Redis; a shipper interval of an hour leaves shipping to the
test (`ship()`), so what is in the file and what is in Redis can be asserted.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import redis

from pulse.extensions import db
from pulse.ingest import buffer, limits, spool
from tests.factories import make_tenant
from tests.integration.test_ingest import pageview, send
from tests.integration.test_ingest_buffer import count, redis_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def spool_settings(settings, tmp_path):
    return {
        **settings,
        "INGEST_SPOOL": True,
        "INGEST_SPOOL_DIR": str(tmp_path / "spool"),
        "INGEST_SPOOL_SHIP_INTERVAL": 3600,
    }


@pytest.fixture
def spooling_app(spool_settings, redis_url):
    with redis_app(spool_settings, redis_url) as app:
        yield app
        spool.close_all()


@pytest.fixture
def limited_spooling_app(spool_settings, redis_url):
    limited = {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": redis_url}
    with redis_app(spool_settings, redis_url, **limited) as app:
        yield app
        spool.close_all()


def spool_files(app) -> list[Path]:
    return sorted(spool.directory_for(app.config, app.config["REDIS_URL"]).glob("*.spool"))


def the_spool(app) -> spool.Spool:
    outbox = spool.for_process(app.config, app.config["REDIS_URL"])
    assert outbox is not None
    return outbox


def test_spooled_requests_reach_the_queue_as_one_item_and_are_stored(spooling_app):
    t = make_tenant("alpha")
    client = spooling_app.test_client()
    for i in range(3):
        body = {"site": t.site.site_key, "events": [pageview(id=f"s{i}"), pageview(id=f"t{i}")]}
        assert send(client, body).status_code == 202
    # Acknowledged from the file: nothing in Redis yet, one line per request on disk.
    assert buffer.pending() == 0
    [path] = spool_files(spooling_app)
    assert len(path.read_bytes().splitlines()) == 3

    assert the_spool(spooling_app).ship()
    assert spool_files(spooling_app) == [] and buffer.pending() == 1
    [item] = buffer.connection().lrange(buffer.QUEUE, 0, -1)
    assert sorted(row["event_uid"] for row in orjson.loads(item)) == [
        "s0", "s1", "s2", "t0", "t1", "t2"
    ]  # fmt: skip
    assert buffer.drain_all(spooling_app) == 6 and count() == 6


def test_the_per_ip_limit_is_exact_in_one_process(limited_spooling_app):
    """The first 1/8 of the limit is counted in memory; the exact path adds those counts."""
    t = make_tenant("alpha")
    client = limited_spooling_app.test_client()
    body = {"site": t.site.site_key, "events": [pageview()]}
    limit = limits.PER_IP["batch"]
    statuses = [send(client, body, ip="10.7.7.7").status_code for _ in range(limit + 3)]
    assert statuses == [202] * limit + [429] * 3
    spooled = limit // spool.FAST_SHARE
    [path] = spool_files(limited_spooling_app)
    assert len(path.read_bytes().splitlines()) == spooled
    assert buffer.pending() == limit - spooled  # the rest went through the exact path
    the_spool(limited_spooling_app).ship()
    assert buffer.drain_all(limited_spooling_app) == limit
    # Redis holds every request counted, the refused ones too, as the exact path does.
    window_key = limits.redis_keys(limits.Admission(kind="batch", ip="10.7.7.7", ip_exempt=False))[
        0
    ]
    assert int(buffer.connection().get(window_key)) == limit + 3


def test_shipments_add_the_counts_and_learn_the_totals_of_other_processes(
    limited_spooling_app, redis_url, tmp_path
):
    t = make_tenant("alpha")
    client = limited_spooling_app.test_client()
    body = {"site": t.site.site_key, "events": [pageview()]}
    ip_key, site_key = limits.redis_keys(
        limits.Admission(kind="batch", ip="10.8.8.8", ip_exempt=False, site_id=t.site.id, events=1)
    )
    # Another process has counted 2 requests of this IP and 40 events of this site.
    other = spool.Spool(redis_url, tmp_path / "other", interval=3600)
    assert other.take(ip_key, 30, site_key, 2_000, 20, b"[]")
    assert other.take(ip_key, 30, site_key, 2_000, 20, b"[]")
    assert other.ship()
    assert send(client, body, ip="10.8.8.8").status_code == 202
    ours = the_spool(limited_spooling_app)
    assert ours.ship()
    assert (ours.counts[ip_key].merged, ours.counts[site_key].merged) == (3, 41)
    # Beyond 30 // 8 = 3 requests this IP is no longer counted in memory.
    assert not ours.take(ip_key, 30, site_key, 2_000, 1, b"[]")


def test_a_dead_process_leaves_its_spool_and_a_drainer_ships_it(spooling_app, redis_url):
    directory = spool.directory_for(spooling_app.config, redis_url)
    rows = [[{"n": i}] for i in range(5)]
    code = (
        "import sys, orjson\n"
        "from pathlib import Path\n"
        "from pulse.ingest.spool import Spool\n"
        f"s = Spool({redis_url!r}, Path({str(directory)!r}), interval=3600)\n"
        f"for rows in {rows!r}:\n"
        "    assert s.take('', 0, '', 0, 0, orjson.dumps(rows))\n"
        "print('spooled', flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"spooled"
        drainer = buffer.Drainer(spooling_app)
        assert drainer.recover_orphans() == 0  # alive: its file is its own
        assert buffer.pending() == 0
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert drainer.recover_orphans() == 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert list(directory.glob("*.spool")) == []
    [item] = buffer.connection().lrange(buffer.QUEUE, 0, -1)
    assert json.loads(item) == [{"n": i} for i in range(5)]


def test_when_redis_is_unreachable_the_file_stays_and_requests_take_the_exact_path(
    tmp_path, redis_url
):
    redis.Redis.from_url(redis_url).flushdb()
    nowhere = "redis://127.0.0.1:9/0"  # discard port: nothing listens
    outbox = spool.Spool(nowhere, tmp_path, interval=3600)
    assert outbox.take("", 0, "", 0, 1, b'[{"n":1}]')
    assert not outbox.ship() and not outbox.healthy
    assert not outbox.take("", 0, "", 0, 1, b'[{"n":2}]')  # the caller uses Redis, or the database
    [path] = tmp_path.glob("*.spool")
    assert path.read_bytes() == b'[{"n":1}]\n'
    os.close(outbox._outbox[0][0])  # the process ends: its lock goes with it
    assert spool.recover(tmp_path, redis_url) == 1
    assert redis.Redis.from_url(redis_url).lrange(buffer.QUEUE, 0, -1) == [b'[{"n":1}]']
    redis.Redis.from_url(redis_url).flushdb()


def test_merge_joins_items_into_lists_of_bounded_size(monkeypatch):
    monkeypatch.setattr(spool, "MAX_ITEM_BYTES", 20)
    items = [orjson.dumps([{"n": i}]) for i in range(5)] + [b"[]"]
    merged = spool.merge(items)
    assert [row for item in merged for row in orjson.loads(item)] == [{"n": i} for i in range(5)]
    assert len(merged) > 1 and all(len(item) <= 20 + 10 for item in merged)


def test_a_process_ships_its_spool_when_it_closes(spooling_app):
    t = make_tenant("alpha")
    client = spooling_app.test_client()
    assert send(client, {"site": t.site.site_key, "events": [pageview(id="c1")]}).status_code == 202
    spool.close_all()
    assert spool_files(spooling_app) == [] and buffer.pending() == 1
    db.session.remove()


def test_a_spool_folder_that_cannot_be_made_leaves_requests_on_the_exact_path(
    spool_settings, redis_url, tmp_path
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with redis_app({**spool_settings, "INGEST_SPOOL_DIR": str(blocker)}, redis_url) as app:
        t = make_tenant("alpha")
        response = send(app.test_client(), {"site": t.site.site_key, "events": [pageview()]})
        assert response.status_code == 202
        assert buffer.pending() == 1  # pushed by the exact path, not spooled
        spool.close_all()


def test_full_files_are_shipped_one_call_each_and_a_backlog_turns_requests_away(
    tmp_path, redis_url, monkeypatch
):
    """Memory holds one file at a time; a shipper this far behind sends requests to the
    exact path rather than let the spool grow."""
    monkeypatch.setattr(spool, "FILE_BYTES", 10)
    monkeypatch.setattr(spool, "MAX_FILES", 2)
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    outbox = spool.Spool(redis_url, tmp_path, interval=3600)
    assert outbox.take("", 0, "", 0, 1, b'[{"n":1}]')
    assert outbox.take("", 0, "", 0, 1, b'[{"n":2}]')
    assert not outbox.take("", 0, "", 0, 1, b'[{"n":3}]')  # two full files wait
    assert len(list(tmp_path.glob("*.spool"))) == 2
    assert outbox.ship()
    assert connection.lrange(buffer.QUEUE, 0, -1) == [b'[{"n":1}]', b'[{"n":2}]']
    assert list(tmp_path.glob("*.spool")) == []
    assert outbox.take("", 0, "", 0, 1, b'[{"n":3}]')
    outbox.close()
    assert connection.lrange(buffer.QUEUE, 0, -1)[-1] == b'[{"n":3}]'
    connection.flushdb()


def test_a_recoverer_never_takes_a_file_that_its_owner_is_still_creating(
    tmp_path, redis_url, monkeypatch
):
    """A recovery that runs between the owner's open and its lock finds nothing to take."""
    connection = redis.Redis.from_url(redis_url)
    connection.flushdb()
    outbox = spool.Spool(redis_url, tmp_path, interval=3600)
    real_flock, recoveries = fcntl.flock, []

    def flock_after_a_recovery(fd, operation):
        if not recoveries:
            recoveries.append("running")
            recoveries.append(spool.recover(tmp_path, redis_url))
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_recovery)
    assert outbox.take("", 0, "", 0, 1, b'[{"n":1}]')
    assert recoveries == ["running", 0]
    assert outbox.ship()
    assert connection.lrange(buffer.QUEUE, 0, -1) == [b'[{"n":1}]']
    connection.flushdb()
