"""The live event stream (SSE): in one process, through Redis, and across gunicorn workers.

Every test reads frames as they come; a missing event shows up as the stream ending
(its lifetime is short here) rather than as a hang. Ordering needs no sleeps: the
stream is subscribed before its first frame, and an event that must not appear is
sent before one that must, so a leak would be the first frame read.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import redis
import requests
from flask import Flask

from pulse import create_app
from pulse.analytics import stream
from pulse.extensions import db
from pulse.ingest import buffer, store
from pulse.ingest.sites import clear_cache
from pulse.models import Event
from tests.conftest import _empty_tables
from tests.factories import add_member, make_key, make_tenant, make_user, sign_in
from tests.integration.test_ingest_buffer import redis_app
from tests.integration.test_rollups import _event as stored_event
from tests.integration.test_worker import free_port, process_env, wait_for

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CLAUDEBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
    "+claudebot@anthropic.com)"
)
STREAMING = {"STREAM_HEARTBEAT_SECONDS": 0.2, "STREAM_MAX_SECONDS": 20}
PUBLIC_KEYS = set(stream.PUBLIC) | {"ts", "cursor"}


@pytest.fixture
def settings(settings):
    return {**settings, **STREAMING}


@pytest.fixture(autouse=True)
def _fresh_site_cache():
    clear_cache()
    yield
    clear_cache()


def track(client, tenant, path="/", user_agent=CHROME, **extra):
    """A browser pageview through the tracking endpoint; asserts the 202."""
    domain = tenant.site.domain
    event = {"name": "pageview", "url": f"https://{domain}{path}", **extra}
    response = client.post(
        "/api/v1/track/batch",
        json={"site": tenant.site.site_key, "events": [event]},
        headers={"User-Agent": user_agent, "Accept": "*/*", "Origin": f"https://{domain}"},
        environ_base={"REMOTE_ADDR": "81.2.69.142"},
    )
    assert response.status_code == 202, response.get_json()
    return response


class Frames:
    """SSE frames from a body's chunks: `next_event()` skips comments (heartbeats)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.pending = b""
        self.seen: list[dict[str, str]] = []

    def frame(self) -> dict[str, str]:
        while b"\n\n" not in self.pending:
            try:
                self.pending += next(self.chunks)
            except StopIteration:
                pytest.fail(f"the stream ended; frames so far: {self.seen}")
        raw, self.pending = self.pending.split(b"\n\n", 1)
        fields: dict[str, str] = {}
        for line in raw.decode().split("\n"):
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.removeprefix(" ")
        self.seen.append(fields)
        return fields

    def next_event(self) -> dict[str, str]:
        while "data" not in (found := self.frame()):
            pass
        return found

    def data(self) -> dict:
        return orjson.loads(self.next_event()["data"])


def open_stream(client, url: str, **headers: str) -> Frames:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    frames = Frames(iter(response.response))
    first = frames.frame()
    assert first["retry"].isdigit() and "data" not in first
    return frames


# In one process -------------------------------------------------------------------------


def test_new_events_of_the_site_are_streamed_and_other_sites_are_not(app, client):
    alpha, beta = make_tenant("alpha"), make_tenant("beta")
    frames = open_stream(client, f"/api/v1/sites/{alpha.site.id}/stream?key={alpha.key}")
    track(client, beta, "/beta-only")
    track(client, alpha, "/pricing")
    event = frames.data()
    assert event["path"] == "/pricing" and event["hostname"] == "alpha.example"
    assert event["label"] == "human" and event["name"] == "pageview"
    stored = db.session.scalars(db.select(Event).where(Event.site_id == alpha.site.id)).one()
    moment = stored.ts.replace(tzinfo=stored.ts.tzinfo or UTC)
    assert event["id"] == stored.event_uid
    assert frames.seen[-1]["id"] == f"{int(moment.timestamp() * 1000)}-{stored.event_uid}"


def test_the_payload_is_small_and_has_no_personal_data(app, client):
    alpha = make_tenant("alpha")
    frames = open_stream(client, f"/api/v1/sites/{alpha.site.id}/stream?key={alpha.key}")
    track(
        client,
        alpha,
        "/account?email=someone@example.test",
        user_id="user-4711",
        referrer="https://mail.example.test/inbox/secret-thread",
        props={"email": "someone@example.test"},
    )
    raw = frames.next_event()["data"]
    assert set(orjson.loads(raw)) == PUBLIC_KEYS
    for secret in ("user-4711", "secret-thread", "someone@example.test", "Chrome/124"):
        assert secret not in raw
    assert orjson.loads(raw)["referrer"] == "mail.example.test"


def test_classification_and_filters_narrow_the_stream(app, client):
    alpha = make_tenant("alpha")
    base = f"/api/v1/sites/{alpha.site.id}/stream?key={alpha.key}"
    agents_only = open_stream(client, base + "&classification=agent")
    on_page = open_stream(client, base + "&page=/docs")
    track(client, alpha, "/", CHROME)
    track(client, alpha, "/docs", CLAUDEBOT)
    agent = agents_only.data()
    assert agent["label"] == "agent" and agent["agent"] == "ClaudeBot"
    assert on_page.data()["path"] == "/docs"


def test_hits_after_the_first_stream_with_their_visits_source(app, client):
    alpha = make_tenant("alpha")
    base = f"/api/v1/sites/{alpha.site.id}/stream?key={alpha.key}"
    from_google = open_stream(client, base + "&source=Google")
    everything = open_stream(client, base)
    track(client, alpha, "/landing", referrer="https://www.google.com/")
    track(client, alpha, "/pricing")  # an internal click: no referrer of its own
    first, second = everything.data(), everything.data()
    assert (first["path"], first["source"], first["channel"]) == (
        "/landing",
        "Google",
        "organic-search",
    )
    assert (second["path"], second["source"], second["channel"]) == (
        "/pricing",
        "Google",
        "organic-search",
    )
    assert [from_google.data()["path"], from_google.data()["path"]] == ["/landing", "/pricing"]


def test_a_rolled_back_write_is_never_announced(app):
    alpha = make_tenant("alpha")
    subscription = stream.Subscription(alpha.site.id, None)

    def row(path):
        now = datetime.now(UTC)
        return {"site_id": alpha.site.id, "event_uid": path, "ts": now, "name": "pageview",
                "pathname": path, "label": "human"}  # fmt: skip

    try:
        stream.publish([row("/rolled-back")])
        db.session.rollback()
        backfill = {**row("/backfill"), "ts": datetime.now(UTC) - timedelta(hours=2)}
        session_end = {**row("/end"), "name": "session_end"}
        stream.publish([row("/committed"), session_end, backfill])
        assert subscription.get(0.01) is None  # not before the commit
        db.session.commit()
        message = subscription.get(5)
        assert [e["path"] for e in message["events"]] == ["/committed"]
        assert subscription.get(0.01) is None
    finally:
        subscription.close()


def test_a_retried_batch_announces_only_what_it_stored(app):
    alpha = make_tenant("alpha")
    subscription = stream.Subscription(alpha.site.id, None)
    now = datetime.now(UTC)

    def row(uid, path):
        return {**stored_event(alpha.site.id, now, uid), "pathname": path}

    try:
        assert store.write([row("first", "/first")]) == 1
        db.session.commit()
        assert [e["path"] for e in subscription.get(5)["events"]] == ["/first"]
        # The drainer retries a batch it could not acknowledge: the stored event again.
        assert store.write([row("first", "/first"), row("second", "/second")]) == 1
        db.session.commit()
        assert [e["path"] for e in subscription.get(5)["events"]] == ["/second"]
        assert subscription.get(0.01) is None
    finally:
        subscription.close()


def test_last_event_id_replays_what_a_reconnecting_viewer_missed(app, client):
    alpha = make_tenant("alpha")
    for path in ("/one", "/two", "/three"):
        track(client, alpha, path)
    first = db.session.scalars(db.select(Event).where(Event.pathname == "/one")).one()
    moment = first.ts.replace(tzinfo=first.ts.tzinfo or UTC)
    cursor = f"{int(moment.timestamp() * 1000)}-{first.event_uid}"
    url = f"/api/v1/sites/{alpha.site.id}/stream?key={alpha.key}"
    frames = open_stream(client, url, **{"Last-Event-ID": cursor})
    assert [frames.data()["path"] for _ in range(2)] == ["/two", "/three"]
    # A garbled id is ignored, not an error.
    garbled = open_stream(client, url, **{"Last-Event-ID": "not-a-cursor\x7f"})
    track(client, alpha, "/four")
    assert garbled.data()["path"] == "/four"


def test_the_stream_beats_and_ends_so_the_client_reconnects():
    class Quiet:
        closed = False

        def get(self, timeout):
            clock.now += timeout
            return None

        def close(self):
            self.closed = True

    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    clock, quiet = Clock(), Quiet()
    body = list(stream.sse(quiet, lambda _: True, heartbeat=15, lifetime=40, clock=clock))
    assert body[0].startswith(b"retry: 3000\n")
    assert body[1:4] == [b": heartbeat\n\n"] * 3  # at 15, 30 and 40 seconds
    assert body[-1].startswith(b"event: reconnect\n") and len(body) == 5
    assert quiet.closed and clock.now == 40

    class Lost(Quiet):
        def get(self, timeout):
            raise redis.ConnectionError("gone")

    lost = Lost()
    body = list(stream.sse(lost, lambda _: True, heartbeat=15, lifetime=40, clock=clock))
    assert body[-1].startswith(b"event: reconnect\n") and len(body) == 2 and lost.closed


def test_who_may_open_the_stream(app, client):
    alpha, other = make_tenant("alpha"), make_tenant("other")
    url = f"/api/v1/sites/{alpha.site.id}/stream"
    assert client.get(url).status_code == 401
    assert client.get(url + "?key=pk_wrong").status_code == 401
    no_stats = make_key(alpha.team, alpha.owner, ["sites:read"])
    forbidden = client.get(f"{url}?token={no_stats}")
    assert forbidden.status_code == 403
    assert forbidden.get_json()["required_scope"] == "stats:read"
    assert client.get(url, headers={"X-API-Key": no_stats}).status_code == 403
    assert client.get(f"{url}?api_key={other.key}").status_code == 404
    for bad in ("entry_page=/", "prop.plan=pro", "classification=robots"):
        response = client.get(f"{url}?key={alpha.key}&{bad}")
        assert response.status_code == 422, bad
        assert response.get_json()["error"] == "validation_failed"
    viewer = make_user("viewer@example.test")
    add_member(alpha.team, viewer, "viewer")
    sign_in(client, viewer.email)
    open_stream(client, url)  # the session cookie, as EventSource sends it


def test_seed_paths_of_the_stream_and_the_live_snapshot(app, client):
    alpha = make_tenant("alpha")
    seed_002 = open_stream(client, f"/api/v1/stream?site={alpha.site.id}&key={alpha.key}")
    team_path = f"/api/v1/teams/{alpha.team.slug}/analytics/{alpha.site.id}/stream"
    team = open_stream(client, team_path, Authorization=f"Bearer {alpha.key}")
    seed_000 = open_stream(
        client, f"/api/v1/live?siteId={alpha.site.id}&k={alpha.key}", Accept="text/event-stream"
    )
    track(client, alpha, "/everywhere")
    for frames in (seed_002, team, seed_000):
        assert frames.data()["path"] == "/everywhere"
    snapshot = client.get(f"/api/v1/live?siteId={alpha.site.id}", headers={"X-API-Key": alpha.key})
    assert snapshot.is_json and snapshot.get_json()["data"]["visitors"] == 1
    assert client.get(f"/api/v1/live?siteId={alpha.site.id}&k={alpha.key}").status_code == 401


def test_a_dead_redis_never_fails_ingestion(settings):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app({**settings, "REDIS_URL": dead})
    with app.app_context():
        try:
            alpha = make_tenant("alpha")
            track(app.test_client(), alpha, "/still-stored")
            track(app.test_client(), alpha, "/also-stored")
            paths = set(db.session.scalars(db.select(Event.pathname)))
            assert paths == {"/still-stored", "/also-stored"}
        finally:
            db.session.remove()
            _empty_tables()


# Through Redis ---------------------------------------------------------------------------


def test_redis_stream_shows_what_the_drainer_stored(settings, redis_url):
    with redis_app({**settings, **STREAMING}, redis_url) as app:
        alpha, beta = make_tenant("alpha"), make_tenant("beta")
        client = app.test_client()
        frames = open_stream(client, f"/api/v1/sites/{alpha.site.id}/stream?key={alpha.key}")
        track(client, beta, "/beta-only")
        track(client, alpha, "/via-redis")
        assert buffer.pending() == 2  # buffered: nothing stored or announced yet
        assert buffer.drain_all(app) == 2
        event = frames.data()
        assert event["path"] == "/via-redis" and event["hostname"] == "alpha.example"


def test_one_publish_per_site_per_batch(settings, redis_url):
    with redis_app(settings, redis_url) as app:
        alpha, beta = make_tenant("alpha"), make_tenant("beta")
        client = app.test_client()
        publisher = _client(redis_url)
        listener = publisher.pubsub(ignore_subscribe_messages=True)
        channels = [stream.channel(publisher, t.site.id) for t in (alpha, beta)]
        listener.subscribe(*channels)
        for n in range(3):
            track(client, alpha, f"/a{n}")
        for n in range(2):
            track(client, beta, f"/b{n}")
        assert buffer.drain_all(app) == 5
        marker = b"end-of-test"
        _client(redis_url).publish(channels[0], marker)
        received: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + 10
        while not received or received[-1][1] != marker:
            assert time.monotonic() < deadline, received
            message = listener.get_message(timeout=1)  # None for subscribe confirmations
            if message is not None:
                received.append((message["channel"].decode(), message["data"]))
        listener.close()
        bodies = [(ch, orjson.loads(data)) for ch, data in received[:-1]]
        assert sorted(ch for ch, _ in bodies) == sorted(channels)  # one message each
        by_channel = {ch: [e["path"] for e in body["events"]] for ch, body in bodies}
        assert by_channel == {channels[0]: ["/a0", "/a1", "/a2"], channels[1]: ["/b0", "/b1"]}


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


@contextmanager
def _second_app(settings: dict) -> Iterator[Flask]:
    other = create_app(settings)
    with other.app_context():
        yield other
        db.session.remove()


def test_two_app_instances_share_the_stream_through_redis(settings, redis_url):
    # No AOF needed: with INGEST_BUFFER_REQUIRE_AOF on, a Redis without one is written
    # through in the request, as on a plain deployment; a buffering one is drained below.
    with redis_app(settings, redis_url, INGEST_BUFFER_REQUIRE_AOF=True) as viewer_app:
        alpha = make_tenant("alpha")
        viewer = viewer_app.test_client()
        frames = open_stream(viewer, f"/api/v1/sites/{alpha.site.id}/stream?key={alpha.key}")
        config = {**settings, "REDIS_URL": redis_url, "INGEST_BUFFER_REQUIRE_AOF": True}
        with _second_app(config) as tracker_app:
            track(tracker_app.test_client(), alpha, "/from-the-other-app")
            if buffer.pending():
                buffer.drain_all(tracker_app)
        assert frames.data()["path"] == "/from-the-other-app"


def test_gunicorn_workers_see_each_others_events(app, settings, database_url, redis_url, tmp_path):
    """Two sync workers: one is held by the stream, so the tracking POST is served by the other."""
    alpha = make_tenant("alpha")
    port = free_port()
    env = process_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        RATELIMIT_ENABLED="false",
        INGEST_BUFFER_REQUIRE_AOF="true",
        BASE_URL=f"http://127.0.0.1:{port}",
    )
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    args = ["wsgi:app", "-w", "2", "-k", "sync", "--graceful-timeout", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *args, "-b", f"127.0.0.1:{port}"],
        cwd=stream_root(),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def logs() -> str:
        return (tmp_path / "gunicorn.log").read_text(errors="replace")[-3000:]

    def healthy() -> bool:
        assert proc.poll() is None, logs()
        try:
            return requests.get(f"{base}/api/health", timeout=5).ok
        except requests.RequestException:
            return False

    try:
        wait_for(healthy, 60, "gunicorn to answer")
        url = f"{base}/api/v1/sites/{alpha.site.id}/stream?key={alpha.key}"
        with requests.get(url, stream=True, timeout=30) as response:
            assert response.status_code == 200, response.text
            frames = Frames(response.iter_content(chunk_size=None))
            assert "retry" in frames.frame()
            posted = requests.post(
                f"{base}/api/v1/track/batch",
                json={
                    "site": alpha.site.site_key,
                    "events": [{"name": "pageview", "url": "https://alpha.example/cross-worker"}],
                },
                headers={"User-Agent": CHROME, "Origin": "https://alpha.example"},
                timeout=10,
            )
            assert posted.status_code == 202, posted.text
            if _client(redis_url).llen(buffer.QUEUE):  # a Redis with an AOF buffers
                with _second_app({**settings, "REDIS_URL": redis_url}) as drainer:
                    buffer.drain_all(drainer)
            assert frames.data()["path"] == "/cross-worker"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def stream_root() -> str:
    from tests.integration.test_worker import ROOT

    return str(ROOT)
