"""pulse.js in Debian's Chromium: what it sends from a real page on another origin.

Two werkzeug servers run in threads: the Pulse app (serving /pulse.js and the
tracking endpoint) and a tiny page server on another port, whose pages under
pages/ embed the snippet with data-api pointing at Pulse. The tracker's requests
are therefore cross-origin, as on a customer's site. A WSGI recorder in front of
the Pulse app keeps every request to the tracking endpoint, so the tests read the
very bodies the browser sent (beacons included) while the app still answers them.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy import select

from pulse import tracker
from pulse.accounts.actor import Actor
from pulse.extensions import db
from pulse.ingest.schemas import Batch, TrackEvent
from pulse.models import Event
from pulse.sites import service as sites
from tests.browser.conftest import SCREENSHOTS
from tests.factories import make_tenant
from tests.serving import serve

PAGES = Path(__file__).resolve().parent / "pages"
EVENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
PARTNER = "https://partner.example/offer?ref=shop"
HIDE = """() => {
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
  document.dispatchEvent(new Event('visibilitychange'));
}"""

pytestmark = pytest.mark.browser


# ---- Servers -------------------------------------------------------------------------


@dataclass
class Hit:
    """One request that reached the tracking endpoint."""

    method: str
    path: str
    content_type: str
    origin: str
    body: Any
    status: int = 0  # the app's answer


@dataclass
class Recorder:
    """WSGI middleware: remember each tracking request, then hand it to the app."""

    app: Callable[..., Any]
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["PATH_INFO"].startswith("/api/v1/track"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            raw = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(raw)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            hit = Hit(
                environ["REQUEST_METHOD"],
                environ["PATH_INFO"],
                environ.get("CONTENT_TYPE", ""),
                environ.get("HTTP_ORIGIN", ""),
                body,
            )
            with self.lock:
                self.hits.append(hit)

            def answer(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
                hit.status = int(status.split()[0])
                return start_response(status, headers, *args)

            return self.app(environ, answer)
        return self.app(environ, start_response)

    def batches(self, site: str) -> list[dict[str, Any]]:
        """The site's batches in the order they were sent (requests may overtake each other)."""
        with self.lock:
            found = [
                h.body
                for h in self.hits
                if h.method == "POST" and isinstance(h.body, dict) and h.body.get("site") == site
            ]
        return sorted(found, key=lambda batch: batch["events"][0]["ts"] if batch["events"] else 0)

    def events(self, site: str) -> list[dict[str, Any]]:
        return [event for batch in self.batches(site) for event in batch["events"]]

    def wait_for(
        self, site: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10
    ) -> list[dict[str, Any]]:
        """The site's events once `predicate(events)` holds; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events(site)
            if predicate(events):
                return events
            time.sleep(0.05)
        names = [(e["name"], urlsplit(e["url"]).path) for e in self.events(site)]
        raise AssertionError(f"timed out; events so far: {names}")


@dataclass
class PageServer:
    """The customer's site: pages/*.html with the snippet filled in, and a PDF."""

    pulse: str
    site_key: str = ""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ["PATH_INFO"]
        if path.endswith(".pdf"):
            start_response(
                "200 OK",
                [
                    ("Content-Type", "application/pdf"),
                    ("Content-Disposition", 'attachment; filename="report.pdf"'),
                ],
            )
            return [b"%PDF-1.4\n%%EOF\n"]
        page = PAGES / Path(path).name
        if path.rsplit("/", 1)[0] != "" or page.suffix != ".html" or not page.is_file():
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        html = page.read_text().replace("{{PULSE}}", self.pulse).replace("{{SITE}}", self.site_key)
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html.encode()]


@dataclass
class Shop:
    """The page origin, the Pulse origin, the site's key and the tracking recorder."""

    origin: str
    pulse: str
    site_key: str
    site_id: int
    recorder: Recorder

    def url(self, path: str) -> str:
        return self.origin + path

    def events(self) -> list[dict[str, Any]]:
        return self.recorder.events(self.site_key)

    def batches(self) -> list[dict[str, Any]]:
        return self.recorder.batches(self.site_key)

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10
    ) -> list[dict[str, Any]]:
        return self.recorder.wait_for(self.site_key, predicate, timeout)


@pytest.fixture
def shop(app: Flask) -> Iterator[Shop]:
    """Pulse and a customer's site on two origins; the site allows the page origin."""
    if "tracker" not in app.blueprints:  # until create_app registers the tracker itself
        tracker.init_app(app)
    recorder = Recorder(app)
    with serve(recorder, "pulse-server") as pulse_base:
        pages = PageServer(pulse_base)
        with serve(pages, "page-server") as origin:
            tenant = make_tenant("shop")
            sites.update_site(Actor(user=tenant.owner), tenant.site, {"allowed_origins": [origin]})
            db.session.commit()
            pages.site_key = tenant.site.site_key
            yield Shop(origin, pulse_base, pages.site_key, tenant.site.id, recorder)


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh profile; the partner site of the outbound link is a stub, not the internet."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.route(
        "https://partner.example/**",
        lambda route: route.fulfill(content_type="text/html", body="<h1>Partner</h1>"),
    )
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A tab whose uncaught errors fail the test: the tracker must never throw."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert errors == [], f"errors thrown in the page: {errors}"


# ---- Helpers -------------------------------------------------------------------------


def path_of(event: dict[str, Any]) -> str:
    parts = urlsplit(event["url"])
    return parts.path + (f"#{parts.fragment}" if parts.fragment else "")


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["name"] == name]


def has(name: str, count: int = 1) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: len(named(events, name)) >= count


def open_shop(page: Page, shop: Shop, path: str = "/index.html", **goto: Any) -> None:
    page.goto(shop.url(path), **goto)
    page.wait_for_function("window.pulse && window.pulse.loaded === true")


def assert_schema_valid(shop: Shop) -> None:
    """Every batch the browser sent passes the server's own schema."""
    for batch in shop.batches():
        Batch.model_validate(batch)
        for event in batch["events"]:
            TrackEvent.model_validate(event)
            assert EVENT_ID.match(event["id"])


def screenshot(page: Page, request: pytest.FixtureRequest) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=False)


# ---- What the tracker sends ------------------------------------------------------------


def test_pageview_on_load_is_a_cross_origin_simple_request(
    shop: Shop, page: Page, request: pytest.FixtureRequest
) -> None:
    started = int(time.time() * 1000)
    open_shop(page, shop, "/index.html?utm_source=news", referer="https://news.example/today")
    events = shop.wait_for(has("pageview"))
    screenshot(page, request)

    pageview = named(events, "pageview")[0]
    assert pageview["url"] == shop.url("/index.html?utm_source=news")
    assert pageview["referrer"] == "https://news.example/today"
    assert started - 1000 <= pageview["ts"] <= int(time.time() * 1000)
    assert EVENT_ID.match(pageview["id"])
    # The call queued by the inline stub before pulse.js loaded arrives too.
    early = named(events, "early_bird")[0]
    assert early["props"] == {"source": "inline"}

    hits = [h for h in shop.recorder.hits if h.path.startswith("/api/v1/track")]
    assert {h.method for h in hits} == {"POST"}, "a CORS-simple request: no preflight"
    assert {h.path for h in hits} == {"/api/v1/track/batch"}
    assert all(h.content_type.startswith("text/plain") for h in hits)
    assert {h.origin for h in hits} == {shop.origin}
    batch = shop.batches()[0]
    assert batch["site"] == shop.site_key
    assert "behaviour" not in batch, "behaviour travels with the session_end"
    assert_schema_valid(shop)


def test_detection_signals_give_away_the_automated_browser(shop: Shop, page: Page) -> None:
    open_shop(page, shop)
    shop.wait_for(has("pageview"))
    signals = shop.batches()[0]["signals"]
    assert signals["webdriver"] is True, "Playwright's Chromium sets navigator.webdriver"
    assert signals["headless"] is True
    assert isinstance(signals["plugins"], int) and isinstance(signals["languages"], int)
    assert isinstance(signals["automation"], list)
    assert signals["outer_zero"] in (True, False)
    assert signals["chrome_obj_missing"] is False
    assert signals["touch_mismatch"] is False
    assert all(batch["signals"] == signals for batch in shop.batches())


def test_automation_globals_are_reported(shop: Shop, page: Page) -> None:
    page.add_init_script("window.callPhantom = function () {}; document.$cdc_asdjflasutopfhvc = 1;")
    open_shop(page, shop)
    shop.wait_for(has("pageview"))
    automation = shop.batches()[0]["signals"]["automation"]
    assert "callPhantom" in automation
    assert "$cdc_asdjflasutopfhvc" in automation


def test_custom_events_with_props(shop: Shop, page: Page) -> None:
    open_shop(page, shop)
    page.evaluate("pulse.track('signup', {plan: 'pro', seats: 3, trial: true})")
    page.evaluate("pulse.q.push(['track', 'late_queue', {via: 'q'}])")
    events = shop.wait_for(lambda evs: has("signup")(evs) and has("late_queue")(evs))
    signup = named(events, "signup")[0]
    assert signup["props"] == {"plan": "pro", "seats": 3, "trial": True}
    assert signup["url"] == shop.url("/index.html")
    assert "referrer" not in signup
    assert named(events, "late_queue")[0]["props"] == {"via": "q"}
    assert_schema_valid(shop)


def test_event_ids_without_crypto_random_uuid(shop: Shop, page: Page) -> None:
    """Plain-HTTP pages have no crypto.randomUUID: ids fall back to 22 random characters."""
    page.add_init_script("delete Crypto.prototype.randomUUID")
    open_shop(page, shop)
    page.evaluate("for (let i = 0; i < 5; i++) pulse.track('tick')")
    events = shop.wait_for(has("tick", 5))
    ids = [e["id"] for e in events]
    assert all(re.fullmatch(r"[a-z0-9]{22}", event_id) for event_id in ids), ids
    assert len(set(ids)) == len(ids)
    assert_schema_valid(shop)


def test_element_clicks_carry_a_short_stable_selector(shop: Shop, page: Page) -> None:
    open_shop(page, shop)
    page.get_by_role("button", name="Pricing").click()
    page.get_by_role("button", name="Buy now").click()
    page.locator("#email").click()
    events = shop.wait_for(has("element_click", 3))
    pricing, buy, email = (e["element"] for e in named(events, "element_click"))
    assert pricing == {
        "selector": "ul > li:nth-of-type(2) > button.cta",
        "tag": "button",
        "text": "Pricing",
    }
    assert page.locator(pricing["selector"]).inner_text() == "Pricing"
    assert buy["selector"] == "#buy" and buy["text"] == "Buy now"
    assert email == {"selector": "#email", "tag": "input", "text": ""}
    sent = json.dumps(shop.batches())
    assert "secret@example.test" not in sent, "never the value of a form field"
    assert_schema_valid(shop)


def test_file_downloads_and_outbound_links(shop: Shop, page: Page) -> None:
    open_shop(page, shop)
    with page.expect_download():
        page.get_by_role("link", name="Annual report (PDF)").click()
    shop.wait_for(has("file_download"))
    # The outbound link leaves the page: its event rides the pagehide beacon.
    page.locator("#outbound").click()
    page.wait_for_url(PARTNER)
    events = shop.wait_for(lambda evs: has("outbound_click")(evs) and has("session_end")(evs))
    assert named(events, "file_download")[0]["props"] == {"url": shop.url("/files/report.pdf")}
    assert named(events, "outbound_click")[0]["props"] == {"url": PARTNER}
    link_clicks = [e["element"] for e in named(events, "element_click")]
    assert link_clicks == [
        {
            "selector": "main > p > a:nth-of-type(2)",
            "tag": "a",
            "text": "Annual report (PDF)",
            "href": shop.url("/files/report.pdf"),
        },
        {"selector": "#outbound", "tag": "a", "text": "Our partner", "href": PARTNER},
    ]
    assert len(named(events, "session_end")) == 1
    assert_schema_valid(shop)


def test_internal_link_ends_the_page_view_and_the_next_page_counts(shop: Shop, page: Page) -> None:
    open_shop(page, shop)
    page.get_by_role("link", name="Second page").click()
    page.wait_for_url(shop.url("/second.html"))
    events = shop.wait_for(lambda evs: has("pageview", 2)(evs) and has("session_end")(evs))
    assert [(e["name"], path_of(e)) for e in events if e["name"] != "early_bird"] == [
        ("pageview", "/index.html"),
        ("element_click", "/index.html"),
        ("session_end", "/index.html"),  # by beacon, as the first page went away
        ("pageview", "/second.html"),
    ]
    assert named(events, "pageview")[1]["referrer"] == shop.url("/index.html")
    assert named(events, "outbound_click") == named(events, "file_download") == []


def test_spa_navigation_counts_a_pageview_and_flushes_engagement(shop: Shop, page: Page) -> None:
    open_shop(page, shop)
    shop.wait_for(has("pageview"))
    page.evaluate("history.pushState({}, '', '/app/pricing')")
    page.evaluate("history.replaceState({step: 2}, '', '/app/pricing')")  # same path: no view
    shop.wait_for(lambda evs: has("pageview", 2)(evs) and has("session_end")(evs))
    page.evaluate("history.pushState({}, '', '/app/checkout')")
    page.go_back()  # popstate back to /app/pricing
    shop.wait_for(has("pageview", 4))
    time.sleep(1.2)  # a duplicate would have been flushed by now
    events = shop.events()

    pageviews = named(events, "pageview")
    assert [path_of(e) for e in pageviews] == [
        "/index.html",
        "/app/pricing",
        "/app/checkout",
        "/app/pricing",
    ]
    assert pageviews[1]["referrer"] == shop.url("/index.html")
    assert pageviews[2]["referrer"] == shop.url("/app/pricing")
    ends = named(events, "session_end")
    assert [path_of(e) for e in ends] == ["/index.html", "/app/pricing", "/app/checkout"]
    assert all(0 <= e["engaged_ms"] <= 86_400_000 for e in ends)
    assert all(0 < e["scroll_depth"] <= 100 for e in ends)
    assert_schema_valid(shop)


def test_session_end_on_hide_reports_engagement_and_behaviour(
    shop: Shop, page: Page, request: pytest.FixtureRequest
) -> None:
    open_shop(page, shop)
    for x, y in [(100, 100), (300, 200), (500, 260), (700, 300)]:
        page.mouse.move(x, y, steps=3)
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role("button", name="Pricing").click()
    page.mouse.wheel(0, 900)
    page.wait_for_function("window.scrollY >= 900")
    expected_depth = page.evaluate(
        """() => {
          const root = document.documentElement;
          const height = Math.max(root.scrollHeight, document.body.scrollHeight);
          return Math.round((window.scrollY + window.innerHeight) / height * 100);
        }"""
    )
    time.sleep(1.2)
    page.mouse.move(640, 400)
    screenshot(page, request)
    page.evaluate(HIDE)
    shop.wait_for(has("session_end"))
    page.evaluate(HIDE)  # hidden again, then gone: still one session_end per page view
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pagehide'))")
    time.sleep(0.5)

    (end,) = named(shop.events(), "session_end")
    assert end["url"] == shop.url("/index.html")
    assert 1000 <= end["engaged_ms"] <= 60_000
    assert end["scroll_depth"] == expected_depth
    assert 30 < expected_depth < 100
    batch = next(b for b in shop.batches() if any(e["name"] == "session_end" for e in b["events"]))
    behaviour = batch["behaviour"]
    assert behaviour["pointer_moves"] >= 4
    assert behaviour["scrolls"] >= 1
    assert behaviour["keypresses"] == 1
    assert behaviour["clicks"] == 2
    assert len(behaviour["click_intervals_ms"]) == 1 and behaviour["click_intervals_ms"][0] >= 0
    assert behaviour["engaged_ms"] == end["engaged_ms"]
    assert behaviour["pageviews"] == 1
    assert batch["signals"]["webdriver"] is True
    assert_schema_valid(shop)


def test_batching_sends_at_most_ten_events_per_request(shop: Shop, page: Page) -> None:
    open_shop(page, shop)
    page.evaluate("for (let i = 0; i < 25; i++) pulse.track('tick', {i})")
    events = shop.wait_for(has("tick", 25))
    # Batches travel in parallel and may arrive in any order; each keeps its own order.
    assert sorted(e["props"]["i"] for e in named(events, "tick")) == list(range(25))
    for batch in shop.batches():
        ticks = [e["props"]["i"] for e in batch["events"] if e["name"] == "tick"]
        assert ticks == sorted(ticks)
    sizes = [len(b["events"]) for b in shop.batches()]
    assert max(sizes) == 10 and sum(sizes) == len(events)
    assert len({e["id"] for e in events}) == len(events), "every event has its own id"


def test_hostile_calls_never_throw_and_stay_within_the_schema(shop: Shop, page: Page) -> None:
    open_shop(page, shop)
    page.evaluate(
        """() => {
          const cyclic = {}; cyclic.self = cyclic;
          const many = {};
          for (let i = 0; i < 40; i++) many['k' + i] = i;
          pulse.track('x'.repeat(300), {
            ['long'.repeat(30)]: 'v'.repeat(2000), cyclic, nested: {a: [1, 2]},
            fn() {}, undef: undefined, nan: NaN, sym: Symbol('s'), nothing: null,
          });
          pulse.track('many', many);
          pulse.track(); pulse.track(null); pulse.track('');
          pulse.track('string_props', 'not an object');
          pulse.track(12345);
          pulse.q.push(null);
          history.pushState({}, '', '/' + 'p'.repeat(3000));
        }"""
    )
    events = shop.wait_for(lambda evs: has("many")(evs) and has("pageview", 2)(evs))
    hostile = named(events, "x" * 120)[0]["props"]
    assert hostile == {
        "long" * 16: "v" * 500,
        "cyclic": "",
        "nested": '{"a":[1,2]}',
        "nan": None,
        "sym": "Symbol(s)",
        "nothing": None,
    }
    assert len(named(events, "many")[0]["props"]) == 30
    assert "props" not in named(events, "string_props")[0]
    assert named(events, "12345")
    assert len(named(events, "pageview")[1]["url"]) == 2048
    assert_schema_valid(shop)


# ---- Settings and privacy ------------------------------------------------------------------


def test_opt_out_sends_nothing(shop: Shop, context: BrowserContext, page: Page) -> None:
    context.add_init_script("localStorage.setItem('pulse_ignore', 'true')")
    open_shop(page, shop)
    page.evaluate("pulse.track('signup', {plan: 'pro'})")
    page.get_by_role("button", name="Buy now").click()
    page.evaluate("history.pushState({}, '', '/elsewhere')")
    page.evaluate(HIDE)
    time.sleep(1.5)
    assert shop.recorder.hits == []
    assert page.evaluate("typeof pulse.track") == "function"


def test_excluded_paths_are_not_tracked(shop: Shop, page: Page) -> None:
    open_shop(page, shop, "/excluded.html")
    page.get_by_role("button", name="A button").click()
    for path in ["/private/a/b", "/drafts/7/edit", "/drafts/7/8/edit", "/public"]:
        page.evaluate(f"history.pushState({{}}, '', '{path}')")
    shop.wait_for(has("pageview", 2))
    time.sleep(1.2)
    events = shop.events()
    assert [(e["name"], path_of(e)) for e in events] == [
        ("pageview", "/drafts/7/8/edit"),  # one "*" spans one path segment only
        ("session_end", "/drafts/7/8/edit"),
        ("pageview", "/public"),
    ]
    assert named(events, "pageview")[1]["referrer"] == shop.url("/drafts/7/8/edit")


def test_hash_routes_with_element_clicks_off(shop: Shop, page: Page) -> None:
    open_shop(page, shop, "/hash.html")
    page.get_by_role("link", name="Pricing").click()
    page.get_by_role("button", name="Plain").click()
    shop.wait_for(has("pageview", 2))
    page.go_back()
    shop.wait_for(has("pageview", 3))
    time.sleep(1.2)
    events = shop.events()
    assert [path_of(e) for e in named(events, "pageview")] == [
        "/hash.html",
        "/hash.html#/pricing",
        "/hash.html",
    ]
    assert named(events, "element_click") == [], 'data-track-clicks="false"'


def test_core_build_sends_pageviews_and_custom_events_only(shop: Shop, page: Page) -> None:
    open_shop(page, shop, "/core.html")  # no data-api: the endpoint is the script's origin
    page.get_by_role("button", name="A button").click()
    page.evaluate("history.pushState({}, '', '/core/next')")
    page.evaluate("pulse.track('signup', {plan: 'pro'})")
    page.evaluate(HIDE)  # flushes the queue at once, by beacon
    events = shop.wait_for(lambda evs: has("signup")(evs) and has("pageview", 2)(evs))
    assert [e["name"] for e in events] == ["pageview", "pageview", "signup"]
    assert all("signals" not in b and "behaviour" not in b for b in shop.batches())
    assert_schema_valid(shop)


def test_no_cookies_and_no_storage(shop: Shop, context: BrowserContext, page: Page) -> None:
    open_shop(page, shop)
    page.get_by_role("button", name="Sign up").click()
    page.evaluate("pulse.track('signup', {plan: 'pro'})")
    page.evaluate("history.pushState({}, '', '/app')")
    page.mouse.wheel(0, 600)
    page.evaluate(HIDE)
    shop.wait_for(has("session_end"))
    assert context.cookies() == []
    storage = page.evaluate(
        """async () => ({
          local: localStorage.length,
          session: sessionStorage.length,
          databases: (await indexedDB.databases()).length,
          caches: (await caches.keys()).length,
        })"""
    )
    assert storage == {"local": 0, "session": 0, "databases": 0, "caches": 0}
    pulse_page = context.new_page()
    pulse_page.goto(shop.pulse + "/pulse.js")
    assert pulse_page.evaluate("localStorage.length + sessionStorage.length") == 0
    assert context.cookies() == []
    pulse_page.close()


# ---- End to end: through the real endpoint into the database --------------------------

DESKTOP_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def stored(shop: Shop, count: int, timeout: float = 10) -> list[Event]:
    """The site's stored events once there are `count` of them, oldest first."""
    deadline = time.monotonic() + timeout
    rows: list[Event] = []
    while time.monotonic() < deadline:
        db.session.remove()  # read what the server threads committed
        query = select(Event).where(Event.site_id == shop.site_id).order_by(Event.id)
        rows = list(db.session.scalars(query))
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{len(rows)} of {count} events stored: {[r.name for r in rows]}")


def test_events_reach_the_database_and_the_browser_is_not_human(shop: Shop, page: Page) -> None:
    open_shop(page, shop)
    page.evaluate("pulse.track('signup', {plan: 'pro'})")
    page.get_by_role("button", name="Pricing").click()
    page.evaluate("history.pushState({}, '', '/app/pricing')")
    page.mouse.wheel(0, 600)
    page.evaluate(HIDE)
    shop.wait_for(has("session_end", 2))

    rows = stored(shop, 7)
    assert all(h.status == 202 for h in shop.recorder.hits), [h.status for h in shop.recorder.hits]
    assert sorted((r.name, r.pathname) for r in rows) == [
        ("early_bird", "/index.html"),
        ("element_click", "/index.html"),
        ("pageview", "/app/pricing"),
        ("pageview", "/index.html"),
        ("session_end", "/app/pricing"),
        ("session_end", "/index.html"),
        ("signup", "/index.html"),
    ]
    by_name = {r.name: r for r in rows}
    assert by_name["signup"].props == {"plan": "pro"}
    click = by_name["element_click"]
    assert "ul > li:nth-of-type(2) > button.cta" in json.dumps(click.props)
    ends = [r for r in rows if r.name == "session_end"]
    assert all(r.engaged_ms is not None and 0 < r.scroll_depth <= 100 for r in ends)
    assert {r.event_uid for r in rows} == {e["id"] for e in shop.events()}
    assert {r.label for r in rows} <= {"bot", "agent"}, [(r.label, r.agent_name) for r in rows]


def test_signals_unmask_automation_behind_a_desktop_user_agent(
    shop: Shop, chromium: Browser
) -> None:
    """With an ordinary Chrome user agent, only what pulse.js reports gives it away."""
    context = chromium.new_context(user_agent=DESKTOP_CHROME)
    page = context.new_page()
    open_shop(page, shop)
    page.evaluate("pulse.track('signup', {plan: 'pro'})")
    page.evaluate(HIDE)
    shop.wait_for(has("session_end"))
    rows = stored(shop, 4)
    context.close()
    assert shop.batches()[0]["signals"]["headless"] is False
    assert shop.batches()[0]["signals"]["webdriver"] is True
    assert {r.label for r in rows} <= {"bot", "agent"}, [(r.label, r.agent_name) for r in rows]
    assert all(r.browser == "Chrome" for r in rows)
