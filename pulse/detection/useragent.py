"""Layer 1: what the User-Agent says: a known AI agent, another bot (crawlers.py), a browser.

Patterns are compiled once at import; `inspect` is cached per distinct UA string, so
the common case (a browser UA seen before) is a dictionary lookup.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pulse.detection.crawlers import match as match_crawler
from pulse.detection.crawlers import required_literal
from pulse.detection.scoring import RANK_UA_AI, RANK_UA_LIST, Evidence, Identity, evidence
from pulse.detection.verdict import CATEGORY_LABELS

MAX_UA_LENGTH = 512  # longer UAs are cut before matching: bounds regex work and cache size


@dataclass(frozen=True, slots=True)
class Agent:
    """One row of ai_agents.json."""

    name: str
    category: str
    operator: str | None
    url: str | None
    regex: re.Pattern[str] | None
    verified: bool
    robots_txt_only: bool
    signature_agent: str | None


@dataclass(frozen=True, slots=True)
class UAFacts:
    """What a user agent tells us, computed once per distinct string."""

    evidence: tuple[Evidence, ...]
    client: str | None = None  # browser family the UA claims: "Chrome", "Safari" ...
    major: int | None = None  # that browser's major version
    chromium: int | None = None  # the Chrome/NNN token, for client-hint checks
    platform: str | None = None  # "Windows", "macOS", "Android", "iOS", "Linux", "Chrome OS"
    mobile: bool = False
    declared: bool = False  # names a known bot or agent (behaviour cannot overturn it)


def _load_agents() -> tuple[Agent, ...]:
    raw = json.loads((Path(__file__).with_name("ai_agents.json")).read_text(encoding="utf-8"))
    return tuple(
        Agent(
            name=row["name"],
            category=row["category"],
            operator=row.get("operator"),
            url=row.get("url"),
            regex=re.compile(row["pattern"], re.IGNORECASE) if row.get("pattern") else None,
            verified=bool(row.get("verified")),
            robots_txt_only=bool(row.get("robots_txt_only")),
            signature_agent=row.get("signature_agent"),
        )
        for row in raw["agents"]
    )


AI_AGENTS = _load_agents()
_AI_MATCHABLE = tuple(
    (agent, agent.regex, (required_literal(agent.regex.pattern) or "").lower() or None)
    for agent in AI_AGENTS
    if agent.regex is not None
)

_BROWSERS = (  # (family, regex with the major version in group 1), first match wins
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"\bOPR/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Electron", re.compile(r"\bElectron/(\d+)")),
    ("Chrome", re.compile(r"\bCriOS/(\d+)")),
    ("Firefox", re.compile(r"\bFxiOS/(\d+)")),
    ("Firefox", re.compile(r"\bGecko/\S+ Firefox/(\d+)")),
    ("Chromium", re.compile(r"\bChromium/(\d+)")),
    ("Chrome", re.compile(r"\bChrome/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/")),
    # WebKit views inside iOS and macOS apps (in-app browsers) carry no Safari token.
    ("Safari", re.compile(r"\((?:iPhone|iPad|iPod|Macintosh)[^)]*\) AppleWebKit/[\d.]+ \(KHTML")),
)
_MOZILLA = re.compile(r"Mozilla/5\.0 \(")
_CHROME_TOKEN = re.compile(r"\bChrome/(\d+)")
_PLATFORMS = (
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Windows", re.compile(r"Windows NT")),
    ("Chrome OS", re.compile(r"CrOS")),
    ("macOS", re.compile(r"Macintosh|Mac OS X")),
    ("Linux", re.compile(r"Linux|X11")),
)
_OUTDATED_BELOW = {"Chrome": 100, "Edge": 100, "Firefox": 100}  # majors from before 2022
_SELF_DECLARED = re.compile(
    r"bot\b|bot/|crawl|spider|scrap|fetch|https?://|\+http|@|\bpython|java/|\bcurl\b|wget"
    r"|headless|httpclient|libwww|\bmonitor|\bcheck",
    re.IGNORECASE,
)


def _describe(operator: str | None, category: str) -> str:
    what = CATEGORY_LABELS.get(category, category)
    return f"{operator} {what}" if operator else what


def _browser(ua: str) -> tuple[str | None, int | None]:
    if not _MOZILLA.match(ua):
        return None, None
    for family, regex in _BROWSERS:
        found = regex.search(ua)
        if found:
            return family, int(found.group(1)) if found.groups() else None
    return None, None


def _platform(ua: str) -> str | None:
    for name, regex in _PLATFORMS:
        if regex.search(ua):
            return name
    return None


def inspect(user_agent: object) -> UAFacts:
    """UA facts for any input; only well-formed strings reach the cache."""
    if user_agent is None:
        return UAFacts(evidence=(evidence("ua.missing", "no User-Agent header"),))
    if not isinstance(user_agent, str):
        return UAFacts(evidence=(evidence("ua.missing", "User-Agent is not text"),))
    if not user_agent.strip():
        return UAFacts(evidence=(evidence("ua.missing", "User-Agent is empty"),))
    return _inspect(user_agent[:MAX_UA_LENGTH])


@lru_cache(maxsize=8192)
def _inspect(ua: str) -> UAFacts:
    client, major = _browser(ua)
    chrome = _CHROME_TOKEN.search(ua)
    base = {
        "client": client,
        "major": major,
        "chromium": int(chrome.group(1)) if chrome else None,
        "platform": _platform(ua),
        "mobile": "Mobile" in ua or "iPhone" in ua,
    }
    lowered = ua.lower()
    for agent, regex, literal in _AI_MATCHABLE:
        if (literal is None or literal in lowered) and regex.search(ua):
            strong = agent.verified or agent.robots_txt_only
            ident = Identity(agent.name, agent.category, agent.operator, RANK_UA_AI)
            what = _describe(agent.operator, agent.category)
            if strong:
                reason = f"user agent matches {agent.name} ({what})"
                item = evidence("ua.ai_agent", reason, ident)
            else:
                reason = f"user agent matches {agent.name} ({what}), which people also use"
                item = evidence("ua.ai_agent_unverified", reason, ident)
            return UAFacts(evidence=(item,), declared=strong, **base)
    crawler = match_crawler(ua)
    if crawler is not None:
        ident = Identity(crawler.name, crawler.category, crawler.operator, RANK_UA_LIST)
        what = _describe(crawler.operator, crawler.category)
        item = evidence(crawler.weight_key, f"user agent matches {crawler.name} ({what})", ident)
        return UAFacts(evidence=(item,), declared=True, **base)
    if client is None:
        declared = _SELF_DECLARED.search(ua)
        if declared:
            reason = f"user agent declares automation ({declared.group(0).strip()!r})"
            return UAFacts(evidence=(evidence("ua.self_declared", reason),), **base)
        return UAFacts(
            evidence=(evidence("ua.unknown", "user agent is not a known browser"),), **base
        )
    where = f" on {base['platform']}" if base["platform"] else ""
    version = f" {major}" if major is not None else ""
    items = [evidence("ua.browser", f"user agent is a well-formed {client}{version}{where}")]
    floor = _OUTDATED_BELOW.get(client)
    if floor is not None and major is not None and major < floor:
        items.append(evidence("ua.outdated", f"{client} {major} is years out of date"))
    return UAFacts(evidence=tuple(items), **base)


def clear_cache() -> None:
    """Forget cached UA facts (for benchmarks and after reloading lists)."""
    _inspect.cache_clear()


def signer(host: str) -> Agent | None:
    """The AI agent that signs requests with this Signature-Agent host, if we know it."""
    host = host.lower().rstrip(".")
    for agent in AI_AGENTS:
        sig = agent.signature_agent
        if sig and (host == sig or host.endswith("." + sig)):
            return agent
    return None
