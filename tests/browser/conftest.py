"""Debian's Chromium through Playwright, shared by the browser tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def require_chromium() -> None:
    """Fail under CI=true when Chromium is missing; skip elsewhere."""
    if os.path.exists(CHROMIUM):
        return
    message = f"Chromium is not installed at {CHROMIUM}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing browser is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, one per test module."""
    require_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
