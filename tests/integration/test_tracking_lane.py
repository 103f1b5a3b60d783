"""The tracking fast lane: same answers as the Flask views, limits in one Redis call."""

from __future__ import annotations

import pytest

from pulse import create_app
from pulse.extensions import db
from pulse.ingest import buffer, limits
from pulse.ingest.sites import clear_cache
from tests.conftest import _empty_tables
from tests.factories import make_tenant
from tests.integration.test_ingest import BROWSER, pageview, send
from tests.integration.test_ingest_buffer import redis_app

# (path, body builder) for every JSON tracking route; the site key is filled in.
ROUTES = [
    ("/api/v1/track", lambda key: {"site": key, **pageview(id="t1")}),
    ("/api/v1/track/batch", lambda key: {"site": key, "events": [pageview(id="t2"), {"x": 1}]}),
    ("/api/v1/events", lambda key: {"site": key, "events": [pageview(id="t3")]}),
    ("/track/session/start", lambda key: {"siteKey": key, "page_url": "https://alpha.example/"}),
    ("/track/event", lambda key: {"siteKey": key, "name": "signup", "session_id": "s1"}),
    ("/track/events/batch", lambda key: {"siteKey": key, "events": [{"name": "a"}]}),
    ("/track/session/end", lambda key: {"siteKey": key, "session_id": "s1", "engaged_ms": 9}),
    (
        "/api/v1/pixel/track",
        lambda key: {"site": key, "event": "pageview", "url": "https://alpha.example/"},
    ),
]
VOLATILE = {"session_id", "timestamp", "visitor_id"}


def _answers(settings, lane: bool) -> list[tuple[int, object, dict[str, str]]]:
    app = create_app({**settings, "INGEST_FAST_LANE": lane})
    out = []
    with app.app_context():
        clear_cache()
        t = make_tenant("alpha")
        client = app.test_client()
        for path, build in ROUTES:
            for body in (build(t.site.site_key), build("ps_unknown"), "not json"):
                if isinstance(body, str):
                    response = client.post(path, data=body, headers=BROWSER)
                else:
                    response = send(client, body, path=path)
                payload = response.get_json()
                if isinstance(payload, dict):
                    payload = {k: v for k, v in payload.items() if k not in VOLATILE}
                headers = {
                    name: response.headers.get(name)
                    for name in ("Content-Type", "Access-Control-Allow-Origin")
                }
                assert response.headers["X-Request-ID"]
                out.append((response.status_code, payload, headers))
        pixel = client.get(
            f"/api/v1/pixel?k={t.site.site_key}&u=https://alpha.example/p", headers=BROWSER
        )
        out.append((pixel.status_code, pixel.data, {"Content-Type": pixel.content_type}))
        stored = db.session.execute(db.text("SELECT name, pathname FROM events ORDER BY id")).all()
        out.append((0, [tuple(r) for r in stored], {}))
        db.session.remove()
        _empty_tables()
    return out


def test_the_lane_answers_exactly_as_the_flask_views(settings):
    lane, views = _answers(settings, True), _answers(settings, False)
    assert lane == views
    statuses = [status for status, _, _ in lane]
    # Per route: the valid body is accepted, an unknown key is a 404, bad JSON a 400.
    assert statuses[2::3][: len(ROUTES)] == [400] * len(ROUTES)
    assert statuses[1::3][: len(ROUTES)] == [404] * len(ROUTES), statuses
    assert lane[-2][0] == 200 and lane[-2][1].startswith(b"GIF89a")
    assert len(lane[-1][1]) >= 8  # every valid request stored its events


def test_a_too_large_body_is_a_413_in_the_seed_shape(client):
    make_tenant("alpha")
    response = client.post("/api/v1/track", data=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_invalid_requests_count_against_the_per_ip_limit(settings):
    app = create_app({**settings, "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://"})
    with app.app_context():
        client = app.test_client()
        statuses = [
            client.post(
                "/api/v1/track", data="nope", environ_base={"REMOTE_ADDR": "10.9.9.9"}
            ).status_code
            for _ in range(121)
        ]
        db.session.remove()
    assert statuses[:120] == [400] * 120 and statuses[120] == 429


@pytest.fixture
def redis_limited_app(settings, redis_url):
    limited = {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": redis_url}
    with redis_app(settings, redis_url, **limited) as app:
        yield app


def test_per_ip_limit_in_redis_buffers_nothing_over_the_limit(redis_limited_app):
    t = make_tenant("alpha")
    client = redis_limited_app.test_client()
    body = {"site": t.site.site_key, "events": [pageview()]}
    statuses = [send(client, body, ip="10.3.3.3").status_code for _ in range(31)]
    assert statuses[:30] == [202] * 30 and statuses[30] == 429
    over = send(client, body, ip="10.3.3.3")
    assert over.get_json()["limit"] == 30 and int(over.headers["Retry-After"]) >= 1
    assert over.headers["X-RateLimit-Remaining"] == "0"
    assert buffer.pending() == 30  # the refused requests were not buffered
    # Another address has its own counter.
    assert send(client, body, ip="10.3.3.4").status_code == 202


def test_site_budget_in_redis(redis_limited_app, monkeypatch):
    monkeypatch.setitem(limits.SITE_EVENTS_PER_MINUTE, "free", 5)
    t = make_tenant("alpha")
    client = redis_limited_app.test_client()
    assert send(client, {"site": t.site.site_key, "events": [pageview()] * 5}).status_code == 202
    over = send(client, {"site": t.site.site_key, "events": [pageview()]}, ip="10.4.4.4")
    assert over.status_code == 429 and over.get_json()["limit"] == 5
    assert buffer.pending() == 1  # one request of five events


def test_redis_down_still_stores_the_events(settings, unused_tcp_port=63999):
    app = create_app(
        {
            **settings,
            "REDIS_URL": f"redis://127.0.0.1:{unused_tcp_port}/0",
            "INGEST_BUFFER_REQUIRE_AOF": False,
            "RATELIMIT_ENABLED": True,
        }
    )
    with app.app_context():
        clear_cache()
        t = make_tenant("alpha")
        response = send(app.test_client(), {"site": t.site.site_key, "events": [pageview()]})
        stored = db.session.execute(db.text("SELECT count(*) FROM events")).scalar()
        db.session.remove()
        _empty_tables()
    assert response.status_code == 202 and stored == 1


def test_ip_whitelist_matches_networks_of_both_families(settings):
    app = create_app(
        {**settings, "INGEST_IP_WHITELIST": ["10.0.0.0/8", "2001:db8::/32", "1.2.3.4"]}
    )
    with app.app_context():
        assert limits.whitelisted("10.200.3.4") and limits.whitelisted("1.2.3.4")
        assert limits.whitelisted("2001:db8::7") and limits.whitelisted("::ffff:10.0.0.1")
        for other in ("11.0.0.1", "1.2.3.5", "2001:db9::1", "junk", "\x00", "", "1.2.3"):
            assert not limits.whitelisted(other), other
