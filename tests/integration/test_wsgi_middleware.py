"""PulseMiddleware against a real Pulse server: hits arrive labelled, the app never waits."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from werkzeug.test import Client

from pulse import create_app
from pulse.extensions import db
from pulse.ingest import limits
from pulse.ingest.sites import clear_cache
from pulse.integrations.wsgi import PulseMiddleware, retry_delay
from pulse.models import Event, Visit
from tests.conftest import _empty_tables
from tests.factories import make_key, make_tenant
from tests.serving import serve

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
GPTBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot"
)
CLAUDEBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
    "+claudebot@anthropic.com)"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
AGENTS = [CHROME, FIREFOX, IPHONE, GPTBOT, CLAUDEBOT, GOOGLEBOT]


@pytest.fixture
def pulse(app):
    """(base URL, site key, events:write key) of a live Pulse with one site."""
    clear_cache()
    tenant = make_tenant("alpha")
    key = make_key(tenant.team, tenant.owner, ["events:write"])
    site_key = tenant.site.site_key
    db.session.commit()
    with serve(app) as base:
        yield base, site_key, key
    clear_cache()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Body:
    """A response body that says whether it was read and closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.read, self.closed = chunks, 0, False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    def close(self) -> None:
        self.closed = True


def site_app(environ, start_response):
    """The customer's app: pages, a 404, a static file, a form post."""
    path = environ["PATH_INFO"]
    status = "404 Not Found" if path.startswith("/missing") else "200 OK"
    start_response(status, [("Content-Type", "text/html")])
    return [b"<h1>hello</h1>"]


def wrap(app, base: str, site: str, key: str, **options) -> PulseMiddleware:
    options.setdefault("flush_interval", 0.2)
    return PulseMiddleware(app, endpoint=base, api_key=key, site=site, **options)


def events() -> list[Event]:
    db.session.rollback()  # a fresh snapshot: the server thread wrote them
    return list(db.session.scalars(select(Event).order_by(Event.id)))


def test_requests_arrive_as_labelled_pageviews(pulse):
    base, site, key = pulse
    middleware = wrap(site_app, base, site, key, batch_size=50)
    client = Client(middleware)
    for i in range(300):
        path = f"/missing/{i}" if i % 10 == 0 else f"/docs/page-{i % 7}?ref=x{i}"
        response = client.get(
            path,
            base_url="https://alpha.example",
            headers={"User-Agent": AGENTS[i % 6], "Referer": "https://www.google.com/"},
            environ_base={"REMOTE_ADDR": f"81.2.69.{i % 200 + 1}"},
        )
        assert response.status_code in (200, 404)
    client.get("/static/app.css", base_url="https://alpha.example")  # not a page
    client.get("/logo.png", base_url="https://alpha.example")
    client.post("/contact", base_url="https://alpha.example")  # not a page view
    assert middleware.flush(timeout=60)
    assert (middleware.stats.sent, middleware.stats.dropped, middleware.stats.failed) == (300, 0, 0)

    stored = events()
    assert len(stored) == 300
    assert Counter(e.label for e in stored) == {"human": 150, "agent": 100, "bot": 50}
    assert Counter(e.agent_name for e in stored if e.label != "human") == {
        "GPTBot": 50,
        "ClaudeBot": 50,
        "Googlebot": 50,
    }
    assert Counter(e.props["status"] for e in stored) == {200: 270, 404: 30}
    assert {e.props["method"] for e in stored} == {"GET"}
    assert {e.hostname for e in stored} == {"alpha.example"}
    assert {e.source for e in stored} == {"Google"}
    assert {e.country for e in stored} == {"GB"}
    missing = [e for e in stored if e.props["status"] == 404]
    assert {e.pathname.split("/")[1] for e in missing} == {"missing"}
    for model in (Event, Visit):
        for row in db.session.scalars(select(model)):
            for column in model.__table__.columns:
                assert "81.2.69." not in str(getattr(row, column.name)), column.name
    assert middleware.close(timeout=10)


def test_the_first_forwarded_hop_is_the_client_when_trusted(pulse):
    base, site, key = pulse
    middleware = wrap(site_app, base, site, key, trust_forwarded=True)
    Client(middleware).get(
        "/",
        headers={"User-Agent": CHROME, "X-Forwarded-For": "2a01:4f8:c17:1234::1, 10.0.0.2"},
        environ_base={"REMOTE_ADDR": "10.0.0.1"},
    )
    assert middleware.close(timeout=30)
    [event] = events()
    assert event.country == "DE" and middleware.stats.sent == 1


def test_a_full_queue_drops_and_never_blocks():
    middleware = PulseMiddleware(
        site_app,
        endpoint=f"http://127.0.0.1:{closed_port()}",  # nobody listens: every send fails
        api_key="sk_live_nothing",
        site="ps_nothing",
        max_queue=5,
        batch_size=10,
        flush_interval=0.05,
        retries=3,
        backoff=0.2,
    )
    client = Client(middleware)
    slowest = 0.0
    for _ in range(200):
        started = time.perf_counter()
        assert client.get("/", headers={"User-Agent": CHROME}).status_code == 200
        slowest = max(slowest, time.perf_counter() - started)
    assert slowest < 0.15  # never waited for Pulse: one retry alone waits 0.1-0.2 s
    assert middleware.stats.dropped >= 200 - 5 - 10
    assert middleware.close(timeout=30)
    stats = middleware.stats
    assert (stats.sent, stats.dropped + stats.failed) == (0, 200)
    assert stats.retries >= 1
    # After close the app still answers, untracked.
    assert client.get("/").status_code == 200 and stats.dropped + stats.failed == 200


def test_a_refused_key_is_not_retried(pulse):
    base, site, _ = pulse
    middleware = wrap(site_app, base, site, "sk_live_" + "x" * 40)
    for _ in range(3):
        Client(middleware).get("/", headers={"User-Agent": CHROME})
    assert middleware.close(timeout=30)
    assert (middleware.stats.failed, middleware.stats.retries, middleware.stats.sent) == (3, 0, 0)
    assert events() == []


def test_a_rate_limited_batch_is_retried_then_given_up(settings, monkeypatch):
    """Pulse answers 429 with Retry-After; the middleware waits (capped here) and retries."""
    monkeypatch.setitem(limits.SITE_EVENTS_PER_MINUTE, "free", 5)
    app = create_app({**settings, "RATELIMIT_ENABLED": True, "INGEST_IP_WHITELIST": ["0.0.0.0/0"]})
    with app.app_context():
        clear_cache()
        tenant = make_tenant("alpha")
        key = make_key(tenant.team, tenant.owner, ["events:write"])
        site = tenant.site.site_key
        db.session.commit()
        try:
            with serve(app) as base:
                middleware = wrap(site_app, base, site, key, retries=2, max_delay=0.05)
                for _ in range(8):  # one batch of 8 events: over the budget of 5 a minute
                    Client(middleware).get("/", headers={"User-Agent": CHROME})
                assert middleware.close(timeout=30)
            assert (middleware.stats.retries, middleware.stats.failed) == (2, 8)
            assert db.session.scalar(select(func.count()).select_from(Event)) == 0
        finally:
            db.session.remove()
            _empty_tables()
            clear_cache()


def test_retry_delay_honours_retry_after():
    assert retry_delay(0, "7", 0.5, 60) == 7
    assert retry_delay(3, "120", 0.5, 60) == 60  # capped
    assert retry_delay(0, "Wed, 21 Oct 2015 07:28:00 GMT", 0.5, 60) == 0  # a past date
    assert 2.0 <= retry_delay(3, None, 0.5, 60) <= 4.0  # jittered exponential backoff


def test_streaming_bodies_pass_through_untouched(pulse):
    base, site, key = pulse
    body = Body([b"first ", b"second ", b"third"])

    def streaming(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    middleware = wrap(streaming, base, site, key)
    seen: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/stream", "wsgi.url_scheme": "https"}
    result = middleware(
        {**environ, "HTTP_HOST": "alpha.example"}, lambda s, h, e=None: seen.append(s)
    )
    assert result is body and body.read == 0  # the same object, not read by the middleware
    assert seen == ["200 OK"]
    assert middleware.flush(timeout=30)
    assert [e.pathname for e in events()] == ["/stream"]  # recorded before the body was sent
    assert b"".join(result) == b"first second third"
    result.close()
    assert body.closed

    response = Client(middleware).get("/stream", buffered=False)
    chunks = list(response.response)
    response.close()
    assert chunks == [b"first ", b"second ", b"third"] and body.closed
    assert middleware.close(timeout=30)


def test_late_start_response_and_errors_are_recorded(pulse):
    base, site, key = pulse
    closed = []

    def lazy(environ, start_response):
        def generate():
            try:
                start_response("201 Created", [("Content-Type", "text/plain")])
                yield b"made"
            finally:
                closed.append(True)

        return generate()

    def broken(environ, start_response):
        raise RuntimeError("bug in the app")

    lazy_client = Client(wrap(lazy, base, site, key))
    response = lazy_client.get("/create", headers={"User-Agent": CHROME})
    assert (response.status_code, response.data, closed) == (201, b"made", [True])
    broken_middleware = wrap(broken, base, site, key)
    with pytest.raises(RuntimeError):
        Client(broken_middleware).get("/boom", headers={"User-Agent": CHROME})
    assert lazy_client.application.close(timeout=30) and broken_middleware.close(timeout=30)
    assert sorted((e.pathname, e.props["status"]) for e in events()) == [
        ("/boom", 500),
        ("/create", 201),
    ]
