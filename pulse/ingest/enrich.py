"""Pure functions that turn request facts into the columns of an event.

Plain values in, plain values out, no Flask: each is unit-tested alone
(tests/unit/test_enrich.py) and timed by bench/enrich.py. Country lookup lives in
geo.py, source/channel in referrers.py, the daily salt in salts.py; the first two are
re-exported here so callers import the write path's enrichment from one place.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

from ua_parser import parse as _ua_parse

from pulse.ingest.geo import country_for
from pulse.ingest.referrers import (
    BARE_HOST,
    ReferrerInfo,
    classify_referrer,
    clean_host,
    safe_text,
)

__all__ = [
    "ReferrerInfo",
    "UserAgentInfo",
    "classify_referrer",
    "country_for",
    "engagement_label",
    "engagement_score",
    "parse_user_agent",
    "split_url",
    "visitor_id",
]

MAX_UA = 512  # longer UAs are cut before parsing: bounds regex work and the cache's memory
MAX_URL = 4096
MAX_PATH = 1024  # Event.pathname
MAX_UTM = 255  # Event.utm_*
MAX_NAME = 50  # Event.browser, Event.os
MAX_VERSION = 20  # Event.browser_version
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
DEVICES = ("desktop", "mobile", "tablet", "bot", "unknown")

# ---------------------------------------------------------------- user agent


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """Browser, its major.minor version, OS and device class of a user agent."""

    browser: str | None
    browser_version: str | None
    os: str | None
    device: str  # one of DEVICES


UNKNOWN_UA = UserAgentInfo(None, None, None, "unknown")

_BROWSERS = {  # one name per browser whatever the device: the device column says which
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Other": None,
}
_OSES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS", "Other": None}
_AUTOMATION = frozenset(
    {"curl", "Wget", "Python Requests", "Python-urllib", "Go-http-client", "HeadlessChrome",
     "PhantomJS", "Apache-HttpClient", "Java", "libwww-perl", "Scrapy", "aiohttp",
     "node-fetch", "axios", "HTTPie", "PostmanRuntime"}
)  # fmt: skip
_DESKTOP_OS = frozenset(
    {"Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora", "Debian", "Mint",
     "Red Hat", "openSUSE", "SUSE", "Arch Linux", "FreeBSD", "OpenBSD", "NetBSD", "Solaris"}
)  # fmt: skip
_MOBILE_OS = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS", "Firefox OS",
     "HarmonyOS", "Sailfish", "Tizen"}
)  # fmt: skip
_TV_OR_CONSOLE = re.compile(
    r"smart-?tv|googletv|android tv|\btv\b|crkey|playstation|xbox|nintendo|web0s|hbbtv",
    re.IGNORECASE,
)
_NAME_OK = re.compile(r"^[\w .()+-]+$")


def _name(value: str | None, names: dict[str, str | None]) -> str | None:
    """A display name from a ua-parser family, or None for "Other" and odd families."""
    if not value:
        return None
    value = names.get(value, value)
    if not value or not _NAME_OK.match(value):
        return None
    return value[:MAX_NAME]


def _version(major: str | None, minor: str | None) -> str | None:
    """major.minor at most: enough to group by, too coarse to fingerprint."""
    if not major:
        return None
    return (f"{major}.{minor}" if minor else major)[:MAX_VERSION]


def _device(ua: str, browser: str | None, os: str | None, family: str, model: str) -> str:
    """Device class from ua-parser's device and OS, with the usual Android tablet rule."""
    if family == "Spider" or browser in _AUTOMATION:
        return "bot"
    if _TV_OR_CONSOLE.search(ua) or _TV_OR_CONSOLE.search(model):
        return "unknown"
    lowered = ua.lower()
    if any(word in model for word in ("ipad", "tablet", "kindle")) or "tablet" in lowered:
        return "tablet"
    if os == "Android" and "mobile" not in lowered:
        return "tablet"  # Android phones say "Mobile"; tablets leave it out
    if os in _MOBILE_OS or "mobi" in lowered or family in ("iPhone", "iPod"):
        return "mobile"
    if os in _DESKTOP_OS:
        return "desktop"
    return "unknown"


def parse_user_agent(ua: str | None) -> UserAgentInfo:
    """Browser, version, OS and device of a User-Agent header; cached per distinct string."""
    if not ua or not isinstance(ua, str):
        return UNKNOWN_UA
    return _parse_user_agent(ua[:MAX_UA])


@lru_cache(maxsize=8192)
def _parse_user_agent(ua: str) -> UserAgentInfo:
    """The uncached work of parse_user_agent (ua-parser's rules, then Pulse's names)."""
    try:
        result = _ua_parse(ua)
    except Exception:  # a parser bug must never fail an ingest
        return UNKNOWN_UA
    agent, os, device = result.user_agent, result.os, result.device
    browser_family = agent.family if agent else None
    os_family = os.family if os else None
    family = device.family if device else ""
    model = " ".join(filter(None, (family, device.brand, device.model))).lower() if device else ""
    return UserAgentInfo(
        browser=_name(browser_family, _BROWSERS),
        browser_version=_version(agent.major, agent.minor) if agent else None,
        os=_name(os_family, _OSES),
        device=_device(ua, browser_family, os_family, family, model),
    )


# ---------------------------------------------------------------- URL

_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PARTIAL_ESCAPE = re.compile(r"%[0-9A-Fa-f]?$")
_PAGE_SCHEMES = frozenset({"", "http", "https", "file"})


def _unescape_unreserved(match: re.Match[str]) -> str:
    """%7E -> ~ and %41 -> A; other escapes stay, upper-cased (RFC 3986 6.2.2)."""
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _normalise_path(path: str, fragment: str) -> str:
    """No query or fragment (but a "#/..." hash route stays), no trailing slash, bounded."""
    path = path if path.startswith("/") else "/" + path
    route = fragment.split("?", 1)[0]
    if route.startswith(("/", "!/")) and route.rstrip("/") not in ("", "!"):
        path = (path.rstrip("/") or "/") + "#" + route
    if "%" in path:
        path = _ESCAPE.sub(_unescape_unreserved, path)
    if len(path) > MAX_PATH:
        path = _PARTIAL_ESCAPE.sub("", path[:MAX_PATH])
    return path.rstrip("/") or "/"


def _utm(query: str) -> dict[str, str | None]:
    """utm_* from a query string; `ref` and `source` stand in for utm_source (as Plausible)."""
    found: dict[str, str | None] = dict.fromkeys(UTM_KEYS)
    fallback: str | None = None
    if not query:
        return found
    for key, raw in parse_qsl(query, errors="replace"):
        name = key.strip().lower()
        value = raw.replace("\x00", "").strip()[:MAX_UTM].strip() or None
        if value is None:
            continue
        if name in found and found[name] is None:
            found[name] = value
        elif name in ("ref", "source") and fallback is None:
            fallback = value
    if found["utm_source"] is None:
        found["utm_source"] = fallback
    return found


def split_url(url: str | None) -> tuple[str, str, dict[str, str | None]]:
    """(hostname, pathname, utm) of a page URL, normalised to fit the columns; never raises.

    Memoised (sites send the same few hundred URLs over and over); each call gets its
    own utm dict.
    """
    if not isinstance(url, str) or len(url) > MAX_URL:
        return _split_url(url)
    hostname, pathname, utm = _split_url_cached(url)
    return hostname, pathname, dict(utm)


@lru_cache(maxsize=8192)
def _split_url_cached(url: str) -> tuple[str, str, dict[str, str | None]]:
    return _split_url(url)


def _split_url(url: str | None) -> tuple[str, str, dict[str, str | None]]:
    if not url or not isinstance(url, str):
        return "", "/", dict.fromkeys(UTM_KEYS)
    text = safe_text(url.strip()[:MAX_URL])
    if "://" not in text and BARE_HOST.match(text):
        text = "//" + text  # "example.com/pricing" from a server-side caller
    try:
        parts = urlsplit(text)
        hostname = clean_host(parts.hostname) or ""
    except ValueError:
        return "", "/", dict.fromkeys(UTM_KEYS)
    if parts.scheme not in _PAGE_SCHEMES:  # javascript:, data:, about:blank ... name no page
        return "", "/", dict.fromkeys(UTM_KEYS)
    utm = _utm(parts.query)
    if utm["utm_source"] is None and "?" in parts.fragment:
        utm = _utm(parts.fragment.split("?", 1)[1])  # utm tags inside a hash route
    return hostname, _normalise_path(parts.path, parts.fragment), utm


# ---------------------------------------------------------------- visitor id

_PERSON = b"pulse-visitor-v1"  # BLAKE2b personalisation: these hashes mean nothing elsewhere


def visitor_id(salt: bytes, site_id: int, ip: str, user_agent: str) -> int:
    """Keyed BLAKE2b of site|ip|ua as a signed 64-bit int: stable for a day, then unlinkable."""
    data = f"{site_id}|{ip}|{user_agent}".encode("utf-8", "surrogatepass")
    digest = hashlib.blake2b(data, digest_size=8, key=salt, person=_PERSON).digest()
    return int.from_bytes(digest, "big", signed=True)


# ---------------------------------------------------------------- engagement

BOUNCE_BELOW = 10.0
LABELS = ((70.0, "high"), (40.0, "medium"), (BOUNCE_BELOW, "low"))
SATURATE_SECONDS = 180  # three minutes of attention earns the whole time component
SATURATE_PAGES = 5
SATURATE_EVENTS = 3


def _count(value: int | float | None) -> float:
    """A non-negative finite number from a possibly missing or odd counter."""
    try:
        number = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) and number > 0 else 0.0


def engagement_score(
    pageviews: int, duration_s: int, engaged_ms: int | None, scroll_depth: int | None, events: int
) -> float:
    """How engaged a finished session was, 0-100, comparable across sites (see below).

    Weighted mean of four components, each in [0, 1]:
      time   35  sqrt(min(t, 180 s) / 180 s), t = engaged time if known, else duration
      pages  25  (min(pageviews, 5) - 1) / 4
      events 20  min(events, 3) / 3          (custom events: clicks, forms, not pageviews)
      scroll 20  scroll_depth / 100          (left out of the mean when unknown)
    A session that GA4 would not call engaged (one pageview, no event, under 10 s) is
    capped just below 10, and every engaged session scores at least 10, so "bounce"
    (score < 10) means exactly that. Rounded to one decimal.
    """
    pages, events_n = _count(pageviews), _count(events)
    seconds = _count(engaged_ms) / 1000 if engaged_ms is not None else _count(duration_s)
    parts = [
        (35.0, math.sqrt(min(seconds, SATURATE_SECONDS) / SATURATE_SECONDS)),
        (25.0, (min(pages, SATURATE_PAGES) - 1) / (SATURATE_PAGES - 1) if pages > 1 else 0.0),
        (20.0, min(events_n, SATURATE_EVENTS) / SATURATE_EVENTS),
    ]
    if scroll_depth is not None:
        parts.append((20.0, min(_count(scroll_depth), 100.0) / 100))
    score = 100 * sum(w * v for w, v in parts) / sum(w for w, _ in parts)
    engaged = pages >= 2 or events_n > 0 or seconds >= 10
    score = max(score, BOUNCE_BELOW) if engaged else min(score, BOUNCE_BELOW - 0.1)
    return round(min(max(score, 0.0), 100.0), 1)


def engagement_label(score: float | None) -> str:
    """The bucket the dashboard and lead filters show: bounce, low, medium or high."""
    value = _count(score)
    for floor, label in LABELS:
        if value >= floor:
            return label
    return "bounce"
