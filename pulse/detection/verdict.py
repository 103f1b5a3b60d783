"""The Verdict value and how a list of evidence becomes one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pulse.detection.scoring import PRIOR_LOG_ODDS, Evidence, Identity, probability, tier

AI_CATEGORIES = frozenset(
    {"ai-crawler", "ai-search", "ai-assistant", "ai-browser-agent", "ai-coding-agent"}
)
# Automated, but nothing says which kind: the catch-all category for non-human verdicts.
FALLBACK_CATEGORY = "automation"
# What each category means, in the words reasons and dashboards use.
CATEGORY_LABELS: dict[str, str] = {
    "ai-crawler": "AI crawler",
    "ai-search": "AI search crawler",
    "ai-assistant": "AI assistant fetching for a user",
    "ai-browser-agent": "AI browser agent",
    "ai-coding-agent": "AI coding agent",
    "search-crawler": "search engine crawler",
    "seo": "SEO or ad-tech crawler",
    "social-preview": "link preview fetcher",
    "feed-reader": "feed reader",
    "monitor": "uptime or performance monitor",
    "scanner": "security or network scanner",
    "archiver": "web archiver",
    "http-library": "HTTP library",
    "headless": "headless browser",
    "automation": "browser automation",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Human, bot or agent, with the evidence that led there.

    `category` is None exactly when `label` is "human". `prefetch` marks speculative
    loads (Sec-Purpose: prefetch) that must not count as pageviews whatever the label.
    `declared` means the user agent named a known bot or agent, which behaviour can
    never overturn. The client IP is never part of a verdict.
    """

    label: str
    name: str
    category: str | None
    confidence: float
    tier: str
    reasons: tuple[str, ...]
    operator: str | None = None
    prefetch: bool = False
    bot_probability: float = 0.0
    log_odds: float = PRIOR_LOG_ODDS
    declared: bool = False
    client: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, rounded for display."""
        return {
            "label": self.label,
            "name": self.name,
            "category": self.category,
            "operator": self.operator,
            "confidence": round(self.confidence, 4),
            "tier": self.tier,
            "bot_probability": round(self.bot_probability, 4),
            "reasons": list(self.reasons),
            "prefetch": self.prefetch,
            "declared": self.declared,
            "client": self.client,
        }


def _best_identity(items: Iterable[Evidence]) -> Identity | None:
    best: Identity | None = None
    best_key = (-1, 0.0)
    for item in items:
        if item.identity is not None and (item.identity.rank, item.llr) > best_key:
            best, best_key = item.identity, (item.identity.rank, item.llr)
    return best


def decide(
    items: list[Evidence],
    *,
    client: str | None,
    declared: bool,
    prefetch: bool = False,
    log_odds: float = PRIOR_LOG_ODDS,
    fallback: Identity | None = None,
) -> Verdict:
    """Add the evidence to `log_odds`, then name and label the result.

    Memoised: traffic repeats a few combinations of evidence (one per browser and bot
    seen), and evidence and verdicts are frozen values.
    """
    return _decide(tuple(items), client, declared, prefetch, log_odds, fallback)


@lru_cache(maxsize=4096)
def _decide(
    items: tuple[Evidence, ...],
    client: str | None,
    declared: bool,
    prefetch: bool,
    log_odds: float,
    fallback: Identity | None,
) -> Verdict:
    total = log_odds + sum(item.llr for item in items)
    p_bot = probability(total)
    ordered = sorted(items, key=lambda item: -abs(item.llr))
    reasons = tuple(item.reason for item in ordered)
    if p_bot < 0.5:
        return Verdict(
            label="human",
            name=client or "Unknown",
            category=None,
            confidence=1.0 - p_bot,
            tier=tier(p_bot),
            reasons=reasons,
            prefetch=prefetch,
            bot_probability=p_bot,
            log_odds=total,
            declared=declared,
            client=client,
        )
    ident = _best_identity(items) or fallback
    category = (ident.category if ident else None) or FALLBACK_CATEGORY
    name = (ident.name if ident else None) or client or "Unknown"
    return Verdict(
        label="agent" if category in AI_CATEGORIES else "bot",
        name=name,
        category=category,
        confidence=p_bot,
        tier=tier(p_bot),
        reasons=reasons,
        operator=ident.operator if ident else None,
        prefetch=prefetch,
        bot_probability=p_bot,
        log_odds=total,
        declared=declared,
        client=client,
    )
