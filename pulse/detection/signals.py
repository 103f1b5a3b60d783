"""Layer 4: what the tracker saw inside the page (navigator, window, artefacts).

Every key is optional and arrives from the client, so values are coerced strictly:
a flag counts only if it is really true, a count only if it is a real integer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulse.detection.scoring import (
    RANK_ARTEFACT,
    RANK_HEADLESS,
    RANK_WEBDRIVER,
    Evidence,
    Identity,
    evidence,
)
from pulse.detection.useragent import UAFacts

# Substrings of window/document properties that automation frameworks leave behind.
_ARTEFACTS = (
    ("playwright", "Playwright"),
    ("__pw", "Playwright"),
    ("puppeteer", "Puppeteer"),
    ("cdc_", "Selenium"),
    ("selenium", "Selenium"),
    ("webdriver", "Selenium"),
    ("driver_evaluate", "Selenium"),
    ("fxdriver", "Selenium"),
    ("phantom", "PhantomJS"),
    ("nightmare", "Nightmare"),
    ("domautomation", "ChromeDriver"),
)
_MAX_ARTEFACTS = 16
_DESKTOP_WITH_PLUGINS = frozenset({"Chrome", "Edge", "Opera", "Firefox", "Safari"})


def flag(value: Any) -> bool:
    """True only for a real true: True, 1, or the text 'true'/'1'."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return False


def count(value: Any) -> int | None:
    """A non-negative integer, or None for anything else (bools are not counts)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _artefact_names(raw: Any) -> list[tuple[str, str | None]]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        return []
    found: list[tuple[str, str | None]] = []
    for item in raw[:_MAX_ARTEFACTS]:
        if not isinstance(item, str) or not item.strip():
            continue
        shown = "".join(ch for ch in item.strip()[:40] if ch.isprintable())
        lowered = item.lower()
        tool = next((name for needle, name in _ARTEFACTS if needle in lowered), None)
        found.append((shown, tool))
    return found


def signal_evidence(signals: Mapping[str, Any], ua: UAFacts) -> list[Evidence]:
    """Evidence from the tracker's browser checks; see scoring.WEIGHTS for the weights."""
    items: list[Evidence] = []
    for shown, tool in _artefact_names(signals.get("automation")):
        ident = Identity(tool, "automation", None, RANK_ARTEFACT) if tool else None
        label = f" ({tool})" if tool else ""
        items.append(
            evidence("sig.automation_artefact", f"automation artefact {shown}{label}", ident)
        )
    if flag(signals.get("webdriver")):
        ident = Identity(None, "automation", None, RANK_WEBDRIVER)
        items.append(evidence("sig.webdriver", "navigator.webdriver is true", ident))
    if flag(signals.get("headless")):
        name = "HeadlessChrome" if ua.client in ("Chrome", "Chromium") else None
        ident = Identity(name, "headless", None, RANK_HEADLESS)
        items.append(evidence("sig.headless", "the page's headless-browser checks fired", ident))
    plugins = count(signals.get("plugins"))
    if plugins == 0 and not ua.mobile and ua.client in _DESKTOP_WITH_PLUGINS:
        items.append(evidence("sig.no_plugins", f"desktop {ua.client} reports no plugins"))
    if count(signals.get("languages")) == 0:
        items.append(evidence("sig.no_languages", "navigator.languages is empty"))
    if flag(signals.get("outer_zero")):
        items.append(evidence("sig.outer_zero", "window outer size is zero"))
    if flag(signals.get("touch_mismatch")):
        items.append(evidence("sig.touch_mismatch", "touch support contradicts the user agent"))
    if flag(signals.get("chrome_obj_missing")) and ua.client == "Chrome":
        items.append(evidence("sig.chrome_obj_missing", "Chrome user agent without window.chrome"))
    if not items and _looks_checked(signals):
        items.append(evidence("sig.clean", "browser checks found nothing automated"))
    return items


def _looks_checked(signals: Mapping[str, Any]) -> bool:
    """The tracker ran its checks: webdriver reported false and some counts are sane."""
    webdriver = signals.get("webdriver")
    return (
        isinstance(webdriver, bool) and not webdriver and (count(signals.get("languages")) or 0) > 0
    )
