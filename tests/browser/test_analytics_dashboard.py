"""The analytics dashboard in Debian's Chromium: a real visit, realtime, filters, ranges.

Two loopback servers run in threads: Pulse, and a customer's page on another origin
that carries the very snippet the settings page shows. Every number the test reads
on a page is compared with the JSON API's answer to the same query, fetched with the
browser's own session.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_dashboard_browser import add_site, screenshot, sign_up_and_create_team
from tests.serving import serve

pytestmark = pytest.mark.browser
TIMEOUT = 15_000  # ms: the realtime panel polls every 5 s; other helpers share the CPUs


@dataclass
class CustomerSite:
    """The customer's page: whatever snippet the test pastes into its <head>."""

    snippet: str = ""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["PATH_INFO"] not in ("/", "/pricing"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Customer shop</title>{self.snippet}</head>"
            "<body><h1>Customer shop</h1><a href='/pricing'>Pricing</a></body></html>"
        )
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page.encode()]


@dataclass
class Servers:
    pulse: str
    shop: str
    customer: CustomerSite


@pytest.fixture
def servers(app: Flask) -> Iterator[Servers]:
    """Pulse (its BASE_URL is its real address, so the snippet points at it) and the shop."""
    customer = CustomerSite()
    with serve(app, "pulse-server") as pulse, serve(customer, "shop-server") as shop:
        app.config["BASE_URL"] = pulse
        yield Servers(pulse, shop, customer)


def api(page: Page, path: str, query: str) -> dict[str, Any]:
    """The JSON API's answer, with the signed-in browser's session."""
    response = page.request.get(f"{path}?{query}")
    assert response.status == 200, response.text()
    return response.json()["data"]


def state(page: Page) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(page.url).query))


def kpi(page: Page, name: str) -> float:
    return float(page.locator(f"[data-kpi='{name}']").get_attribute("data-value"))


def history(page: Page, move: Callable[[], Any]) -> None:
    """Back or forward, then wait until htmx has fetched and swapped in that page again
    (and its summary), so the next click acts on the restored page."""
    page.evaluate("document.getElementById('report').dataset.stale = 'yes'")
    move()
    page.wait_for_function("!document.querySelector('#report[data-stale]')", timeout=TIMEOUT)
    page.locator("[data-kpi='visitors']").wait_for(timeout=TIMEOUT)


def site_with_a_visit(page: Page, servers: Servers, then_pricing: bool = False) -> str:
    """Sign up, add a site, allow the shop's origin, visit the shop; the site's base URL.

    With `then_pricing`, the visitor also follows the link to /pricing.
    """
    sign_up_and_create_team(page, servers.pulse, "ana@example.test", "Ana Analytics")
    add_site(page, "Ana shop", "shop.ana.example")
    servers.customer.snippet = page.locator("#tracking-snippet").inner_text().strip()
    assert f"{servers.pulse}/pulse.js" in servers.customer.snippet
    page.get_by_label("Allowed origins").fill(servers.shop)
    page.get_by_role("button", name="Save settings").click()
    page.get_by_text("Site settings saved.").wait_for()
    site_url = page.url

    shop = page.context.new_page()  # the same browser profile visits the customer's site
    with shop.expect_request(lambda r: "/api/v1/track" in r.url and r.method == "POST"):
        shop.goto(servers.shop + "/")
    if then_pricing:
        with shop.expect_request(
            lambda r: "/api/v1/track" in r.url and "/pricing" in (r.post_data or "")
        ):
            shop.get_by_role("link", name="Pricing").click()
    shop.close()
    return site_url


def test_a_visit_shows_up_and_filters_and_ranges_match_the_api(
    servers: Servers, chromium: Browser, request: pytest.FixtureRequest
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/stream") else None)
    site_url = site_with_a_visit(page, servers)
    site_id = int(site_url.rstrip("/").rsplit("/", 1)[1])
    api_base = f"{servers.pulse}/api/v1/sites/{site_id}"

    # Realtime: the visit of a moment ago. Headless Chromium is not counted as a human,
    # so look at all traffic.
    page.get_by_role("link", name="Realtime").click()
    page.get_by_role("navigation", name="Traffic").get_by_role("link", name="All traffic").click()
    expect(page).to_have_url(re.compile(r"classification=all"), timeout=TIMEOUT)
    now = page.locator("[data-kpi='visitors'] .kpi-value")
    expect(now).to_have_text("1", timeout=TIMEOUT)
    live = api(page, f"{api_base}/realtime", "classification=all")
    assert live["visitors"] == 1 and live["pageviews"] == kpi(page, "pageviews") == 1
    expect(page.locator("#realtime-now .row-link")).to_have_text(["/"], timeout=TIMEOUT)

    # With the page open, the visitor reads another page: it shows up without a reload,
    # through the SSE stream when the API offers one (else the 5-second poll).
    shop = context.new_page()
    with shop.expect_request(lambda r: "/api/v1/track" in r.url and r.method == "POST"):
        shop.goto(servers.shop + "/pricing")
    shop.close()
    pageviews = page.locator("[data-kpi='pageviews'] .kpi-value")
    expect(pageviews).to_have_text("2", timeout=TIMEOUT)
    expect(page.locator("#realtime-now .row-link")).to_have_text(["/", "/pricing"])
    if page.locator("[sse-connect]").count():  # the API has a stream: the page listens to it
        assert f"{api_base}/stream" in streams
    screenshot(page, request, "-realtime")

    # Overview for all traffic: the numbers are the API's.
    page.get_by_role("link", name="Overview").click()
    page.get_by_role("navigation", name="Traffic").get_by_role("link", name="All traffic").click()
    expect(page).to_have_url(re.compile(r"classification=all"), timeout=TIMEOUT)
    page.locator("[data-kpi='visitors']").wait_for()
    stats = api(page, f"{api_base}/stats", urlencode(state(page)))
    assert kpi(page, "visitors") == stats["visitors"] == 1
    assert kpi(page, "pageviews") == stats["pageviews"] == 2

    # Click a row: the whole page is filtered, the URL says so, a chip can undo it.
    row = page.locator("#panel-pages").get_by_role("link", name="Filter by Page /", exact=True)
    row.click()
    expect(page).to_have_url(re.compile(r"page=(/|%2F)(&|$)"))
    chips = page.get_by_role("list", name="Active filters")
    expect(chips).to_contain_text("Page: /", timeout=TIMEOUT)
    page.locator("#panel-pages [data-visitors]").first.wait_for()
    filtered = api(page, f"{api_base}/stats", urlencode(state(page)))
    assert state(page)["page"] == "/"
    assert kpi(page, "visitors") == filtered["visitors"] == 1
    pages = api(page, f"{api_base}/pages", urlencode(state(page)))["rows"]
    assert page.locator("#panel-pages tr[data-visitors]").count() == len(pages) == 1

    # Change the range: 30 days; the KPIs follow, and match the API for that range.
    page.get_by_role("navigation", name="Time range").get_by_role("link", name="30 days").click()
    expect(page).to_have_url(re.compile(r"period=30d"), timeout=TIMEOUT)
    expect(page.get_by_role("link", name="30 days")).to_have_attribute(
        "aria-current", "true", timeout=TIMEOUT
    )
    page.locator("[data-kpi='visitors']").wait_for()
    month = api(page, f"{api_base}/stats", urlencode(state(page)))
    assert state(page)["page"] == "/"  # the filter stays
    assert kpi(page, "visitors") == month["visitors"]
    assert kpi(page, "pageviews") == month["pageviews"]
    screenshot(page, request)

    # Back goes to the 7-day view with the filter, forward to 30 days again.
    history(page, page.go_back)
    expect(page).not_to_have_url(re.compile(r"period=30d"), timeout=TIMEOUT)
    expect(page.get_by_role("link", name="7 days")).to_have_attribute(
        "aria-current", "true", timeout=TIMEOUT
    )
    history(page, page.go_forward)
    expect(page).to_have_url(re.compile(r"period=30d"), timeout=TIMEOUT)

    # Remove the chip: the filter is gone from the URL and the page.
    page.get_by_role("link", name="Remove filter Page /", exact=True).click()
    expect(page).not_to_have_url(re.compile(r"page="), timeout=TIMEOUT)
    expect(page.get_by_role("list", name="Active filters")).to_have_count(0, timeout=TIMEOUT)
    assert errors == []
    context.close()


def test_agents_page_names_the_automated_visitor(
    servers: Servers, chromium: Browser, request: pytest.FixtureRequest
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    site_url = site_with_a_visit(page, servers)
    site_id = int(site_url.rstrip("/").rsplit("/", 1)[1])
    page.get_by_role("link", name="Agents & bots").click()
    page.locator("#agents").wait_for()
    agents = api(page, f"{servers.pulse}/api/v1/sites/{site_id}/agents", "period=7d")["rows"]
    shown = page.locator("#agents tbody tr")
    expect(shown).to_have_count(len(agents), timeout=TIMEOUT)
    if agents:  # headless Chromium is told apart as an agent or a bot
        name = agents[0]["name"]
        page.get_by_role("link", name=f"What {name} read").click()
        expect(page.get_by_role("heading", name=f"What {name} read")).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("#agents tr[data-page]")).to_have_count(1, timeout=TIMEOUT)
        assert page.locator("#agents tr[data-page]").get_attribute("data-page") == "/"
    screenshot(page, request)
    context.close()


def test_empty_overview_on_a_phone_in_dark_mode(
    servers: Servers, chromium: Browser, request: pytest.FixtureRequest
) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = context.new_page()
    sign_up_and_create_team(page, servers.pulse, "pip@example.test", "Pip Phones")
    add_site(page, "Pip site", "pip.example")
    page.get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="No visits recorded yet")).to_be_visible(
        timeout=TIMEOUT
    )
    expect(page.locator("#empty-snippet")).to_contain_text('data-site="ps_', timeout=TIMEOUT)
    page.locator("[data-kpi='visitors']").wait_for()
    expect(page.locator("#panel-traffic")).to_be_visible(timeout=TIMEOUT)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 19, 24)"
    # The range controls are reachable and usable with the keyboard.
    link = page.get_by_role("navigation", name="Time range").get_by_role("link", name="30 days")
    link.focus()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"period=30d"), timeout=TIMEOUT)
    # Every panel loads and says it has nothing, rather than staying busy or failing.
    expect(page.locator("[aria-busy='true']")).to_have_count(0, timeout=TIMEOUT)
    expect(page.locator("#panel-pages .empty-panel")).to_contain_text("Nothing in this range")
    screenshot(page, request)
    context.close()


def test_funnel_builder_shows_the_visit_going_through(
    servers: Servers, chromium: Browser, request: pytest.FixtureRequest
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    site_url = site_with_a_visit(page, servers, then_pricing=True)
    site_id = int(site_url.rstrip("/").rsplit("/", 1)[1])
    page.get_by_role("link", name="Funnels").click()
    page.get_by_role("navigation", name="Traffic").get_by_role("link", name="All traffic").click()
    expect(page).to_have_url(re.compile(r"classification=all"), timeout=TIMEOUT)
    page.get_by_label("Step 1").fill("/")
    page.get_by_label("Step 2", exact=True).fill("/pricing")
    page.get_by_role("button", name="Show funnel").click()
    expect(page).to_have_url(re.compile(r"step=%2Fpricing|step=/pricing"), timeout=TIMEOUT)
    bars = page.locator("#funnel [data-count]")
    expect(bars).to_have_count(2, timeout=TIMEOUT)
    asked = {k: v for k, v in state(page).items() if k not in ("step", "window")}
    asked.update(steps="/,/pricing", conversion_window_hours=state(page)["window"])
    query = urlencode(asked)
    answer = api(page, f"{servers.pulse}/api/v1/sites/{site_id}/funnel", query)
    counts = [int(c) for c in bars.evaluate_all("els => els.map(e => e.dataset.count)")]
    assert counts == [s["count"] for s in answer["steps"]] == [1, 1]
    screenshot(page, request)
    context.close()
