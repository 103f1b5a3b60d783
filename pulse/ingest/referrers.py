"""Where a visit came from: referrer host, a human-friendly source and a channel.

Channels follow GA4's default channel grouping, plus an AI-assistant channel:
direct, internal, organic-search, paid-search, organic-social, paid-social, email,
referral, ai-assistant, display, affiliates, video. UTM medium rules override what the
referrer says; a same-site referrer is "internal", which callers treat as no referrer
(the session keeps the source it started with). Known hosts live in data/sources.json.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

MAX_HOST = 255  # Event.referrer_host / Event.hostname
MAX_SOURCE = 100  # Event.source

CATEGORY_CHANNEL = {
    "search": "organic-search",
    "social": "organic-social",
    "email": "email",
    "ai-assistant": "ai-assistant",
    "video": "video",
    "referral": "referral",
}
CHANNELS = frozenset(CATEGORY_CHANNEL.values()) | {
    "direct", "internal", "paid-search", "paid-social", "display", "affiliates",
}  # fmt: skip

_PAID = re.compile(r"^(?:.*cp.*|ppc|retargeting|paid.*)$")  # GA4's paid-medium rule
_DISPLAY = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
_EMAIL = frozenset({"email", "e-mail", "e_mail", "e mail", "newsletter", "mail"})
_SOCIAL = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media",
     "organic-social", "organic_social"}
)  # fmt: skip
_AFFILIATE = frozenset({"affiliate", "affiliates"})
_AI = frozenset({"ai", "llm", "ai-assistant", "ai_assistant", "chatbot"})
_SLD = frozenset({"co", "com", "net", "org", "ac", "or", "ne", "gob", "gov", "edu", "go"})
_HOST_CHARS = re.compile(r"^[a-z0-9_.:-]{1,253}$")  # ":" for IPv6 literals
BARE_HOST = re.compile(r"^[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}(?::\d+)?(?:[/?#]|$)", re.IGNORECASE)
_WEBMAIL_LABELS = frozenset({"webmail", "mail", "email"})


@dataclass(frozen=True, slots=True)
class ReferrerInfo:
    """What Event/Visit store about the origin of a visit."""

    referrer_host: str | None  # without "www.", at most 255 characters
    source: str | None  # "Google", "ChatGPT", or the host; at most 100 characters
    channel: str  # one of CHANNELS


DIRECT = ReferrerInfo(None, None, "direct")
INTERNAL = ReferrerInfo(None, None, "internal")


@dataclass(frozen=True, slots=True)
class _Known:
    """A source from sources.json: its display name and category."""

    name: str
    category: str


def _load() -> tuple[dict[str, _Known], dict[str, _Known], dict[str, _Known]]:
    """Index sources.json by host/package, by wildcard brand, and by lower-case name."""
    raw = json.loads(Path(__file__).with_name("data").joinpath("sources.json").read_text("utf-8"))
    exact: dict[str, _Known] = {}
    brands: dict[str, _Known] = {}
    names: dict[str, _Known] = {}
    for category in CATEGORY_CHANNEL:
        for name, patterns in raw[category].items():
            known = _Known(name, category)
            names[name.lower()] = known
            for pattern in patterns:
                if pattern.endswith(".*"):
                    brands[pattern[:-2]] = known
                else:
                    exact[pattern] = known
    for alias, name in raw["aliases"].items():
        names[alias] = names[name.lower()]
    return exact, brands, names


_EXACT, _BRANDS, _NAMES = _load()


def safe_text(value: str) -> str:
    """Drop NULs and lone surrogates, which PostgreSQL cannot store."""
    value = value.replace("\x00", "")
    if not value.isascii():
        value = value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def clean_host(raw: str | None) -> str | None:
    """Lower-case, port-less, dot-less, IDNA host without "www."; None unless it is a host."""
    if not raw:
        return None
    host = raw.strip().lower().rstrip(".")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    host = host.removeprefix("www.")
    if not _HOST_CHARS.match(host) or len(host) > MAX_HOST:
        return None
    return host


def _brand_candidates(host: str) -> tuple[str, ...]:
    """host minus a TLD-like ending: google.co.uk -> (google.co, google); google.de -> (google,)."""
    labels = host.split(".")
    if len(labels) < 2 or not labels[-1].isalpha():
        return ()
    found = [".".join(labels[:-1])]
    if len(labels) >= 3 and labels[-2] in _SLD and len(labels[-1]) == 2:
        found.append(".".join(labels[:-2]))
    return tuple(found)


@lru_cache(maxsize=4096)
def _lookup(host: str) -> _Known | None:
    """The known source for a host: exact, then wildcard TLD, then ever shorter suffixes."""
    if host in _EXACT:
        return _EXACT[host]
    for brand in _brand_candidates(host):
        if brand in _BRANDS:
            return _BRANDS[brand]
    rest = host
    while "." in rest:
        rest = rest.split(".", 1)[1]
        if rest in _EXACT:
            return _EXACT[rest]
    return None


def _lookup_source(value: str | None) -> _Known | None:
    """A utm_source value, either a name ("chatgpt", "fb") or a host ("chatgpt.com")."""
    if not value:
        return None
    key = value.strip().lower()
    if key in _NAMES:
        return _NAMES[key]
    host = clean_host(key) if "." in key else None
    return _lookup(host) if host else None


def _referrer_host(referrer: str | None) -> str | None:
    """The host of an http(s) or android-app referrer (also of a bare "example.com/x")."""
    if not referrer:
        return None
    text = referrer.strip()
    if "://" not in text:
        if not BARE_HOST.match(text):
            return None
        text = "//" + text
    try:
        parts = urlsplit(text)
        if parts.scheme not in ("", "http", "https", "android-app"):
            return None
        return clean_host(parts.hostname)
    except ValueError:
        return None


def _paid_channel(category: str | None, medium: str) -> str:
    """GA4's paid rules, folded into Pulse's channels (no separate paid-other)."""
    if category == "search":
        return "paid-search"
    if category == "social":
        return "paid-social"
    if category == "video" or "video" in medium or medium == "cpv":
        return "video"
    if "social" in medium:
        return "paid-social"
    if medium in _DISPLAY or "retargeting" in medium or "display" in medium:
        return "display"
    return "paid-search"  # cpc/ppc/paid with an unknown source: pay-per-click is search's


def _channel(category: str | None, source: str, medium: str) -> str:
    """Medium rules first (they override the referrer), then the source's category."""
    if medium and _PAID.match(medium):
        return _paid_channel(category, medium)
    if medium in _DISPLAY:
        return "display"
    if medium in _EMAIL or source in _EMAIL:
        return "email"
    if medium in _AFFILIATE:
        return "affiliates"
    if medium in _SOCIAL:
        return "organic-social"
    if medium in _AI:
        return "ai-assistant"
    if "video" in medium:
        return "video"
    if category:
        return CATEGORY_CHANNEL[category]
    if medium == "organic":
        return "organic-search"
    return "referral"  # a referrer or UTM tags we do not know (GA4 says "Unassigned")


def _cut(value: str | None, limit: int) -> str | None:
    """Strip, drop NULs (PostgreSQL rejects them) and cut to the column's length."""
    if value is None:
        return None
    value = safe_text(value.strip()[: limit * 2])[:limit].strip()
    return value or None


def classify_referrer(
    referrer: str | None, own_hostname: str | None, utm: Mapping[str, str | None]
) -> ReferrerInfo:
    """Referrer host, source and channel of a hit; never raises, fits the columns."""
    utm_source = _cut(utm.get("utm_source"), MAX_HOST)
    medium = (_cut(utm.get("utm_medium"), MAX_HOST) or "").lower()
    host = _referrer_host(referrer)
    own = clean_host(own_hostname)
    if host is not None and host == own:
        host = None
        if not (utm_source or medium):
            return INTERNAL
    if not (host or utm_source or medium):
        return DIRECT
    by_utm = _lookup_source(utm_source)
    by_host = _lookup(host) if host else None
    if by_host is None and host and host.split(".", 1)[0] in _WEBMAIL_LABELS:
        by_host = _Known(host, "email")  # webmail.example-isp.net and the like
    known = by_utm or by_host
    source = known.name if known is not None else utm_source or host
    channel = _channel(known.category if known else None, (utm_source or "").lower(), medium)
    return ReferrerInfo(host, _cut(source, MAX_SOURCE), channel)
