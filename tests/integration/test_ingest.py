"""The tracking endpoints: validation, enrichment, classification, sessions, limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pulse.extensions import db
from pulse.ingest.sites import clear_cache
from pulse.models import Event, Visit, utcnow
from tests.factories import bearer, make_key, make_tenant

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
GPTBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot"
)
BROWSER = {
    "User-Agent": CHROME,
    "Accept-Language": "en-GB,en;q=0.9",
    "Accept": "*/*",
    "Origin": "https://alpha.example",
}
IP = "81.2.69.142"


@pytest.fixture(autouse=True)
def _fresh_site_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def tenant(app):
    return make_tenant("alpha")


def send(client, body, headers=BROWSER, path="/api/v1/track/batch", ip=IP):
    return client.post(path, json=body, headers=headers, environ_base={"REMOTE_ADDR": ip})


def pageview(path="/pricing", **extra):
    return {"name": "pageview", "url": f"https://alpha.example{path}?utm_source=news", **extra}


def events():
    return list(db.session.scalars(db.select(Event).order_by(Event.id)))


def test_a_browser_pageview_is_stored_enriched_and_without_ip(client, tenant):
    response = send(
        client,
        {"site": tenant.site.site_key, "events": [pageview(referrer="https://www.google.com/")]},
    )
    assert response.status_code == 202
    assert response.get_json() == {"queued": 1}
    [event] = events()
    assert (event.site_id, event.name, event.pathname) == (tenant.site.id, "pageview", "/pricing")
    assert event.hostname == "alpha.example"
    assert event.utm_source == "news"
    assert event.label == "human" and event.user_agent is None
    assert event.browser == "Chrome" and event.device == "desktop"
    assert event.country == "GB"
    assert event.referrer_host == "google.com" and event.source == "Google"
    assert isinstance(event.visitor_id, int) and event.session_id
    for column in Event.__table__.columns:
        assert IP not in str(getattr(event, column.name)), column.name


def test_an_ai_crawler_is_labelled_and_keeps_its_user_agent(client, tenant):
    headers = {**BROWSER, "User-Agent": GPTBOT}
    send(client, {"site": tenant.site.site_key, "events": [pageview()]}, headers=headers)
    [event] = events()
    assert (event.label, event.agent_name, event.agent_category) == (
        "agent",
        "GPTBot",
        "ai-crawler",
    )
    assert event.user_agent == GPTBOT
    visit = db.session.get(Visit, event.session_id)
    assert visit.label == "agent" and visit.reasons


def test_sender_checks(client, tenant):
    body = {"site": tenant.site.site_key, "events": [pageview()]}
    foreign = send(client, body, headers={**BROWSER, "Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.get_json()["error"] == "origin_not_allowed"
    unknown = send(client, {**body, "site": "ps_nope"})
    assert unknown.status_code == 404 and unknown.get_json()["error"] == "unknown_site"
    missing = send(client, {"events": [pageview()]})
    assert missing.status_code == 401
    assert events() == []


def test_a_bad_item_does_not_lose_the_good_ones(client, tenant):
    future = int((utcnow() + timedelta(days=2)).timestamp() * 1000)
    body = {
        "site": tenant.site.site_key,
        "events": [
            pageview("/a"),
            {"name": 5},
            "not an object",
            pageview("/b", ts=future),
            {
                "name": "signup",
                "url": "https://alpha.example/x",
                "props": {f"p{i}": i for i in range(10_000)},
            },
            {"name": "signup", "url": "https://alpha.example/x", "props": {"plan": "pro"}},
        ],
    }
    response = send(client, body)
    assert response.status_code == 202
    result = response.get_json()
    assert result["queued"] == 2
    assert [e["index"] for e in result["errors"]] == [1, 2, 3, 4]
    assert result["errors"][2]["error"] == "timestamp_in_future"
    assert [(e.name, e.pathname) for e in events()] == [("pageview", "/a"), ("signup", "/x")]
    assert events()[1].props == {"plan": "pro"}


def test_all_invalid_is_422_and_oversized_is_rejected(client, tenant):
    none_valid = send(client, {"site": tenant.site.site_key, "events": [{"name": 1}]})
    assert none_valid.status_code == 422 and none_valid.get_json()["items"][0]["index"] == 0
    too_many = send(client, {"site": tenant.site.site_key, "events": [pageview()] * 101})
    assert too_many.status_code == 422
    huge = client.post("/api/v1/track/batch", data=b"{" + b" " * 1_100_000 + b"}", headers=BROWSER)
    assert huge.status_code == 413 and huge.get_json()["error"] == "payload_too_large"
    assert events() == []


def test_retries_are_not_counted_twice(client, tenant):
    body = {"site": tenant.site.site_key, "events": [pageview(id="evt-1"), pageview(id="evt-1")]}
    send(client, body)
    send(client, body)
    assert len(events()) == 1


def test_servers_may_backfill_and_speak_for_a_visitor(client, tenant):
    key = make_key(tenant.team, tenant.owner, ["events:write"])
    ten_days = (utcnow() - timedelta(days=10)).isoformat()
    response = send(
        client,
        {
            "site": tenant.site.site_key,
            "events": [
                pageview(ts=ten_days, ip="8.8.8.8", user_agent=GPTBOT),
                pageview(ts=(utcnow() - timedelta(days=40)).isoformat()),
            ],
        },
        headers=bearer(key),
    )
    assert response.get_json()["queued"] == 1
    [event] = events()
    assert event.ts < utcnow() - timedelta(days=9)
    assert event.label == "agent" and event.country == "US"
    browser = send(client, {"site": tenant.site.site_key, "events": [pageview(ip="1.2.3.4")]})
    assert browser.get_json()["items"][0]["error"] == "server_only_field"
    no_scope = send(
        client,
        {"site": tenant.site.site_key, "events": [pageview()]},
        headers=bearer(make_key(tenant.team, tenant.owner, ["stats:read"])),
    )
    assert no_scope.status_code == 403


def test_pageviews_form_visits_with_a_30_minute_timeout(client, tenant):
    key = make_key(tenant.team, tenant.owner, ["events:write"])
    start = utcnow() - timedelta(hours=3)
    stamps = [start, start + timedelta(minutes=10), start + timedelta(minutes=50)]
    for n, ts in enumerate(stamps):
        send(
            client,
            {
                "site": tenant.site.site_key,
                "events": [pageview(f"/p{n}", ts=ts.isoformat(), ip=IP, user_agent=CHROME)],
            },
            headers=bearer(key),
        )
    visits = list(db.session.scalars(db.select(Visit).order_by(Visit.started_at)))
    assert [(v.pageviews, v.entry_path, v.exit_path, v.is_bounce) for v in visits] == [
        (2, "/p0", "/p1", False),
        (1, "/p2", "/p2", True),
    ]
    assert visits[0].duration_s == 600


def test_session_end_scores_engagement(client, tenant):
    site = tenant.site.site_key
    send(client, {"site": site, "events": [pageview()]})
    send(
        client,
        {
            "site": site,
            "events": [
                {
                    "name": "session_end",
                    "url": "https://alpha.example/pricing",
                    "engaged_ms": 45_000,
                    "scroll_depth": 80,
                }
            ],
            "behaviour": {
                "pointer_moves": 120,
                "scrolls": 14,
                "clicks": 3,
                "keypresses": 0,
                "engaged_ms": 45_000,
            },
        },
    )
    [visit] = db.session.scalars(db.select(Visit))
    assert visit.ended_at is not None
    assert visit.engagement_score and visit.engagement_score > 0
    assert visit.behaviour["scroll_depth"] == 80
    assert visit.label == "human"


def test_seed_001_session_flow(client, tenant):
    site = tenant.site.site_key
    start = send(
        client, {"siteKey": site, "page_url": "https://alpha.example/"}, path="/track/session/start"
    )
    assert start.status_code == 200
    reply = start.get_json()
    assert set(reply) == {"session_id", "visitor_id", "timestamp"}
    sid = reply["session_id"]
    event = send(
        client,
        {
            "siteKey": site,
            "session_id": sid,
            "event_type": "cta_click",
            "event_data": {"button": "hero"},
            "page_url": "https://alpha.example/",
        },
        path="/track/event",
    )
    assert event.status_code == 200 and event.get_json()["session_id"] == sid
    end = send(
        client,
        {
            "siteKey": site,
            "session_id": sid,
            "url": "https://alpha.example/",
            "engaged_ms": 30_000,
            "scroll_depth": 60,
        },
        path="/track/session/end",
    )
    assert end.status_code == 200 and 0 <= end.get_json()["engagement_score"] <= 100
    visit = db.session.get(Visit, sid)
    assert (visit.pageviews, visit.events) == (1, 1) and visit.ended_at is not None
    assert {e.name for e in events()} == {"pageview", "cta_click", "session_end"}


def test_seed_000_events_and_seed_002_track(client, tenant):
    one = send(
        client,
        {"site": tenant.site.site_key, "type": "pageview", "url": "https://alpha.example/docs"},
        path="/api/v1/events",
    )
    assert one.status_code == 202 and one.get_json()["queued"] == 1
    two = send(
        client,
        {
            "token": tenant.site.site_key,
            "event": "signup",
            "properties": {"plan": "pro"},
            "url": "https://alpha.example/",
        },
        path="/api/v1/track",
    )
    assert two.status_code == 202 and two.get_json()["queued"] is True
    assert [e.name for e in events()] == ["pageview", "signup"]


def test_pixel(client, tenant):
    gif = client.get(
        f"/api/v1/pixel?k={tenant.site.site_key}&u=https://alpha.example/email",
        headers={"User-Agent": CHROME},
        environ_base={"REMOTE_ADDR": IP},
    )
    assert gif.status_code == 200 and gif.mimetype == "image/gif"
    assert gif.data.startswith(b"GIF89a")
    assert events()[0].pathname == "/email"
    bad = client.get("/api/v1/pixel?k=ps_unknown&u=https://x.example/")
    assert bad.status_code == 404 and bad.get_json()["error"] == "unknown_site"
    config = client.get(f"/api/v1/pixel/config?site={tenant.site.site_key}").get_json()
    assert config["enabled"] is True and config["sample_rate"] == 1.0
    tracked = send(
        client,
        {
            "site": tenant.site.site_key,
            "event": "pageview",
            "url": "https://alpha.example/p",
            "user_agent": "x",
        },
        path="/api/v1/pixel/track",
    )
    assert tracked.status_code == 200 and tracked.get_json() == {"tracked": True}


def test_a_pixel_without_u_takes_the_whole_referer_as_its_page(client, tenant):
    """A long Referer (tracking links carry long query strings) is not cut at 512."""
    filler = "x" * 1200
    page = f"https://alpha.example/landing?ref={filler}&utm_source=mail&utm_campaign=winter"
    gif = client.get(
        f"/api/v1/pixel?k={tenant.site.site_key}",
        headers={"User-Agent": CHROME, "Referer": page},
        environ_base={"REMOTE_ADDR": IP},
    )
    assert gif.status_code == 200
    [event] = events()
    assert (event.pathname, event.utm_source, event.utm_campaign) == (
        "/landing",
        "mail",
        "winter",
    )


def test_prefetches_are_not_counted(client, tenant):
    headers = {**BROWSER, "Sec-Purpose": "prefetch;prerender"}
    response = send(client, {"site": tenant.site.site_key, "events": [pageview()]}, headers=headers)
    assert response.status_code == 202 and response.get_json()["skipped"] == 1
    assert events() == []


def test_cors_preflight_for_tracking(client):
    response = client.options(
        "/track/session/start",
        headers={"Origin": "https://alpha.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_text_plain_bodies_are_accepted(client, tenant):
    import json

    response = client.post(
        "/api/v1/track/batch",
        headers=BROWSER,
        data=json.dumps({"site": tenant.site.site_key, "events": [pageview()]}),
        content_type="text/plain;charset=UTF-8",
    )
    assert response.status_code == 202


@pytest.fixture
def limited_settings(settings):
    return {**settings, "RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": "memory://"}


def test_per_ip_limits_and_whitelist(limited_settings):
    from pulse import create_app
    from tests.conftest import _empty_tables

    for whitelist, expected in (([], 429), (["10.0.0.0/8"], 200)):
        app = create_app({**limited_settings, "INGEST_IP_WHITELIST": whitelist})
        with app.app_context():
            clear_cache()
            t = make_tenant("alpha")
            client = app.test_client()
            statuses = [
                send(
                    client,
                    {"siteKey": t.site.site_key, "page_url": "https://alpha.example/"},
                    path="/track/session/start",
                    ip="10.1.2.3",
                ).status_code
                for _ in range(11)
            ]
            db.session.remove()
            _empty_tables()
        assert statuses[:10] == [200] * 10 and statuses[10] == expected


def test_per_site_budget(limited_settings, monkeypatch):
    from pulse import create_app
    from pulse.ingest import limits
    from tests.conftest import _empty_tables

    monkeypatch.setitem(limits.SITE_EVENTS_PER_MINUTE, "free", 5)
    app = create_app({**limited_settings, "INGEST_IP_WHITELIST": ["0.0.0.0/0"]})
    with app.app_context():
        clear_cache()
        t = make_tenant("alpha")
        client = app.test_client()
        ok = send(client, {"site": t.site.site_key, "events": [pageview()] * 5})
        over = send(client, {"site": t.site.site_key, "events": [pageview()]})
        db.session.remove()
        _empty_tables()
    assert ok.status_code == 202
    assert over.status_code == 429 and over.get_json()["error"] == "rate_limit_exceeded"
    assert int(over.headers["Retry-After"]) >= 1


def test_the_issue_user_agents_are_labelled_through_the_endpoint(client, tenant):
    from tests.unit import test_detection as ua

    expected = [
        (ua.GPTBOT, "agent"),
        (ua.CHATGPT_USER, "agent"),
        (ua.CLAUDEBOT, "agent"),
        (ua.GOOGLEBOT, "bot"),
        ("curl/8.5.0", "bot"),
        ("python-requests/2.32.3", "bot"),
        (ua.CHROME_WINDOWS, "human"),
        (ua.CHROME_MAC, "human"),
        (ua.CHROME_ANDROID, "human"),
        (ua.SAFARI_MAC, "human"),
        (ua.SAFARI_IPHONE, "human"),
        (ua.FIREFOX_WINDOWS, "human"),
        (ua.FIREFOX_ANDROID, "human"),
    ]
    for n, (agent, _) in enumerate(expected):
        headers = {**BROWSER, "User-Agent": agent}
        if not agent.startswith("Mozilla"):
            headers = {"User-Agent": agent, "Accept": "*/*"}  # what curl/requests really send
        response = send(
            client,
            {"site": tenant.site.site_key, "events": [pageview(f"/{n}", id=f"ua{n}")]},
            headers=headers,
        )
        assert response.status_code == 202
    stored = {e.pathname: e.label for e in events()}
    assert [stored[f"/{n}"] for n in range(len(expected))] == [label for _, label in expected]


def test_servers_with_an_events_key_skip_per_ip_limits(limited_settings):
    from pulse import create_app
    from tests.conftest import _empty_tables

    app = create_app(limited_settings)
    with app.app_context():
        clear_cache()
        t = make_tenant("alpha")
        key = make_key(t.team, t.owner, ["events:write"])
        client = app.test_client()
        body = {"site": t.site.site_key, "events": [pageview()]}
        keyed = [send(client, body, headers=bearer(key)).status_code for _ in range(32)]
        browser = [send(client, body).status_code for _ in range(31)]
        db.session.remove()
        _empty_tables()
    assert keyed == [202] * 32
    assert browser[:30] == [202] * 30 and browser[30] == 429
