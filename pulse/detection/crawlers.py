"""The generic bot list: crawler-user-agents, mapped to Pulse categories, matched fast.

The package ships about 1,500 case-sensitive patterns with tags. One alternation of all
of them is slow in `re`, so each pattern gets a literal it must contain, the literals
are indexed by their first three characters, and only the few candidates whose literal
occurs in the UA run their regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from crawleruseragents import CRAWLER_USER_AGENTS_DATA


@dataclass(frozen=True, slots=True)
class Match:
    """A listed bot: display name, Pulse category, weight row and operator if known."""

    name: str
    category: str
    weight_key: str
    operator: str | None


def required_literal(pattern: str) -> str | None:
    """A substring every match of `pattern` must contain, or None if we cannot tell.

    Checking `literal in ua` first skips almost every regex: a big alternation of
    unrelated patterns is far slower in `re` than this loop of substring tests.
    """
    if "|" in pattern or re.search(r"\(\?[^:]", pattern):
        return None  # alternation, flags or lookarounds: no single necessary literal
    runs: list[str] = []
    run, depth, i = "", 0, 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "\\" and i < len(pattern):
            escaped = pattern[i]
            i += 1
            if escaped.isalnum():  # \b \d \w ...: a class or an anchor, not a character
                runs.append(run)
                run = ""
            elif depth == 0:
                run += escaped
            continue
        if ch in "[{":
            close = pattern.find("]" if ch == "[" else "}", i + 1)
            if close < 0:
                return None
            if ch == "{":
                run = run[:-1]  # the repeated character may be absent ({0,n})
            runs.append(run)
            run, i = "", close + 1
        elif ch in "?*":
            runs.append(run[:-1])  # the character before is optional
            run = ""
        elif ch in "()+.^$":
            depth += (ch == "(") - (ch == ")")
            runs.append(run)
            run = ""
        elif depth == 0:
            run += ch
    runs.append(run)
    best = max(runs, key=len)
    return best if len(best) >= 3 else None


# crawler-user-agents tags -> Pulse categories, most specific first.
_TAG_CATEGORY = (
    ("http-library", "http-library"),
    ("social-preview", "social-preview"),
    ("feed-reader", "feed-reader"),
    ("monitoring", "monitor"),
    ("archiver", "archiver"),
    ("scanner", "scanner"),
    ("search-engine", "search-crawler"),
    ("seo", "seo"),
    ("advertising", "seo"),  # ad-tech landing-page and brand-safety crawlers
    ("academic", "search-crawler"),  # research crawlers and indexers
)
_HEADLESS_PATTERN = re.compile(r"Headless|PhantomJS|splash", re.IGNORECASE)
_NAMES = {  # pattern -> display name where the matched text is not a good name
    "bingbot": "Bingbot",
    "yandex\\.com\\/bots": "YandexBot",
    "[wW]get": "Wget",
    "[pP]ingdom": "Pingdom",
    "Googlebot\\/": "Googlebot",
    "Slurp": "Yahoo! Slurp",
}
_OPERATORS = {
    "googlebot": "Google",
    "bingbot": "Microsoft",
    "yandexbot": "Yandex",
    "baiduspider": "Baidu",
    "duckduckbot": "DuckDuckGo",
    "applebot": "Apple",
    "facebookexternalhit": "Meta",
    "twitterbot": "X",
    "linkedinbot": "LinkedIn",
    "slackbot": "Slack",
    "discordbot": "Discord",
    "whatsapp": "Meta",
    "ahrefsbot": "Ahrefs",
    "semrushbot": "Semrush",
    "mj12bot": "Majestic",
    "uptimerobot": "UptimeRobot",
    "pingdom": "Pingdom",
    "archive.org_bot": "Internet Archive",
}


@dataclass(frozen=True, slots=True)
class Crawler:
    """One pattern of the list with its category and required literal."""

    pattern: str
    category: str
    weight_key: str
    literal: str | None


def _crawler_category(pattern: str, tags: list[str]) -> tuple[str, str]:
    if "browser-automation" in tags:
        if _HEADLESS_PATTERN.search(pattern):
            return "headless", "ua.headless"
        return "automation", "ua.automation"
    if "ai-crawler" in tags:
        return ("ai-search" if "search-engine" in tags else "ai-crawler"), "ua.crawler"
    for tag, category in _TAG_CATEGORY:
        if tag in tags:
            key = "ua.http_library" if category == "http-library" else "ua.crawler"
            return category, key
    return "search-crawler", "ua.crawler"


# Case-sensitive, as the list is written; each regex compiles on first need.
_CRAWLERS = tuple(
    Crawler(
        row["pattern"],
        *_crawler_category(row["pattern"], list(row.get("tags") or ())),
        required_literal(row["pattern"]),
    )
    for row in CRAWLER_USER_AGENTS_DATA
)


def _trigram_index() -> tuple[dict[str, tuple[int, ...]], tuple[int, ...]]:
    """Crawlers keyed by the first three characters of their required literal."""
    buckets: dict[str, list[int]] = {}
    always: list[int] = []
    for index, crawler in enumerate(_CRAWLERS):
        if crawler.literal is None:
            always.append(index)
        else:
            buckets.setdefault(crawler.literal[:3], []).append(index)
    return {key: tuple(value) for key, value in buckets.items()}, tuple(always)


_BY_TRIGRAM, _ALWAYS_CHECK = _trigram_index()

# Default user agents of HTTP clients the crawler list does not cover (checked after it).
_EXTRA_LIBRARIES = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("Java", r"^Java/\d"),
        ("PostmanRuntime", r"^PostmanRuntime/"),
        ("GuzzleHttp", r"^GuzzleHttp/"),
        ("Deno", r"^Deno/\d"),
        ("Bun", r"^Bun/\d"),
        ("undici", r"^undici\b"),
        ("RestSharp", r"^RestSharp/"),
        ("Ruby", r"^Ruby\b"),
        ("Faraday", r"^Faraday v\d"),
        ("python-urllib3", r"^python-urllib3/"),
        ("insomnia", r"^insomnia/"),
    )
)

_NAME_TEXT = re.compile(r"[\w.\- ]{2,40}")


def _crawler_name(pattern: str, matched: str) -> str:
    if pattern in _NAMES:
        return _NAMES[pattern]
    found = _NAME_TEXT.match(matched)
    name = found.group(0).strip(" .-") if found else ""
    return name or re.sub(r"[\\^$()\[\]?*+|]", "", pattern)[:40] or "Unknown bot"


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _first_match(ua: str) -> tuple[Crawler, str] | None:
    library: tuple[Crawler, str] | None = None
    candidates = set(_ALWAYS_CHECK)
    for start in range(len(ua) - 2):
        bucket = _BY_TRIGRAM.get(ua[start : start + 3])
        if bucket:
            candidates.update(bucket)
    for index in sorted(candidates):
        crawler = _CRAWLERS[index]
        if crawler.literal is not None and crawler.literal not in ua:
            continue
        found = _compiled(crawler.pattern).search(ua)
        if found is None:
            continue
        if crawler.category != "http-library":
            return crawler, found.group(0)
        library = library or (crawler, found.group(0))
    return library


def match(ua: str) -> Match | None:
    """The first listed bot in `ua`, preferring a named bot over the HTTP library it embeds."""
    found = _first_match(ua)
    if found is not None:
        crawler, matched = found
        name = _crawler_name(crawler.pattern, matched)
        return Match(name, crawler.category, crawler.weight_key, _OPERATORS.get(name.lower()))
    for name, regex in _EXTRA_LIBRARIES:
        if regex.search(ua):
            return Match(name, "http-library", "ua.http_library", None)
    return None
