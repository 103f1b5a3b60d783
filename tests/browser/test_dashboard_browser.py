"""The dashboard in Debian's Chromium through Playwright: with htmx, and with JavaScript off."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, expect

from tests.browser.conftest import SCREENSHOTS
from tests.factories import PASSWORD
from tests.serving import serve

SECRET = re.compile(r"sk_live_[A-Za-z0-9_-]{20,}")

pytestmark = pytest.mark.browser


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app served by werkzeug on a free loopback port, in a thread."""
    with serve(app, "live-server") as base:
        yield base


def screenshot(page, request: pytest.FixtureRequest, suffix: str = "") -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{request.node.name}{suffix}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_up_and_create_team(page, base: str, email: str, team: str) -> None:
    page.goto(f"{base}/signup")
    page.get_by_label("Your name").fill("Dana Marketer")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="Create your first team").wait_for()
    page.get_by_label("Team name").fill(team)
    page.get_by_role("button", name="Create team").click()
    page.get_by_role("heading", name="No sites yet").wait_for()


def add_site(page, name: str, domain: str) -> None:
    page.get_by_role("link", name="Add your first site").click()
    page.get_by_label("Site name").fill(name)
    page.get_by_label("Domain").fill(domain)
    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_role("button", name="Add site").click()
    page.get_by_role("heading", name="Tracking snippet").wait_for()


def test_dashboard_flow_with_htmx(
    live_server: str, chromium: Browser, request: pytest.FixtureRequest
) -> None:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # A 401 for the wrong password is expected; script errors are not.
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    sign_up_and_create_team(page, live_server, "dana@example.test", "Dana Co")
    assert page.url == f"{live_server}/t/dana-co/sites"
    add_site(page, "Dana shop", "shop.dana.example")

    snippet = page.locator("#tracking-snippet").inner_text()
    assert 'data-site="ps_' in snippet and "/pulse.js" in snippet
    copy = page.locator("button[data-copy='#tracking-snippet']")
    expect(copy).to_have_text("Copy snippet")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == snippet.strip()

    page.get_by_label("Key name").fill("Weekly report")
    page.get_by_role("button", name="Create key").click()
    secret_box = page.locator(".secret")
    secret_box.wait_for()
    secret = SECRET.search(secret_box.inner_text()).group(0)
    assert page.locator("#key-name").input_value() == ""  # the form was reset
    assert "Weekly report" in page.locator("#api-keys .rows").inner_text()
    screenshot(page, request)

    page.reload()
    assert page.locator(".secret").count() == 0
    assert secret not in page.content()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to Pulse").wait_for()
    page.get_by_label("Email").fill("dana@example.test")
    page.get_by_label("Password").fill("wrong password, surely")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Wrong email or password.").wait_for()
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Sites").wait_for()
    assert page.url == f"{live_server}/t/dana-co/sites"
    assert page.get_by_role("link", name="Dana shop").is_visible()
    assert [e for e in errors if "status of 401" not in e] == []
    context.close()


def test_dashboard_works_without_javascript(
    live_server: str, chromium: Browser, request: pytest.FixtureRequest
) -> None:
    context = chromium.new_context(
        java_script_enabled=False, viewport={"width": 390, "height": 844}
    )
    page = context.new_page()
    sign_up_and_create_team(page, live_server, "nojs@example.test", "Plain Forms")
    add_site(page, "Plain site", "plain.example")
    assert page.locator("#tracking-snippet").is_visible()
    assert page.get_by_role("button", name="Copy snippet").is_hidden()  # needs JavaScript

    page.get_by_label("Key name").fill("Server key")
    page.get_by_role("button", name="Create key").click()
    secret = SECRET.search(page.locator(".secret").inner_text()).group(0)
    assert secret

    page.get_by_role("link", name=re.compile("^Revoke")).click()
    page.get_by_role("heading", name="Revoke the key Server key?").wait_for()
    page.get_by_role("button", name="Revoke key").click()
    page.get_by_text("API key Server key revoked.").wait_for()
    assert "Plain site" in page.title()
    assert page.get_by_text("No API keys yet.").is_visible()
    screenshot(page, request, "-phone")
    context.close()


def test_site_settings_page_in_dark_mode_on_a_phone(
    live_server: str, chromium: Browser, request: pytest.FixtureRequest
) -> None:
    context = chromium.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = context.new_page()
    sign_up_and_create_team(page, live_server, "dark@example.test", "Night Owls")
    add_site(page, "Night site", "night.example")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390, "the page must not scroll sideways on a phone"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 19, 24)"
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    screenshot(page, request)
    context.close()
