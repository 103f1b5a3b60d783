"""Evidence weights and the arithmetic that turns evidence into a probability.

Every piece of evidence is a log-likelihood ratio, ln P(evidence | automated) /
P(evidence | human), added to the prior log-odds; the logistic of the sum is the
probability that the client is not a person. The weights are hand-set from what the
signals mean (a declared crawler name is near-certain, a missing Accept-Language is a
strong hint, a cloud IP a moderate one) and should be re-fitted on labelled traffic;
keeping them in one table makes that a one-file change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Prior: about one request in ten that reaches a tracker is automated.
PRIOR_LOG_ODDS = math.log(0.1 / 0.9)

# The weight table. Positive: points to a bot or agent. Negative: points to a person.
WEIGHTS: dict[str, float] = {
    # user agent (layer 1)
    "ua.ai_agent": 9.0,  # names a known AI crawler, assistant or agent
    "ua.ai_agent_unverified": 4.0,  # token of an AI tool that people also browse with
    "ua.crawler": 8.0,  # matches the crawler-user-agents list
    "ua.http_library": 8.0,  # curl, python-requests, Go-http-client ...
    "ua.headless": 7.5,  # HeadlessChrome, PhantomJS
    "ua.automation": 7.5,  # Playwright, Puppeteer, Selenium markers
    "ua.self_declared": 5.0,  # unknown UA that says bot, crawler, spider or carries a URL
    "ua.missing": 4.0,  # no User-Agent at all
    "ua.unknown": 2.5,  # not a browser we recognise, not a known bot
    "ua.outdated": 1.0,  # browser major version years out of date
    "ua.browser": -1.0,  # well-formed mainstream browser UA
    # request headers (layer 2)
    "hdr.signed_agent": 7.0,  # Web Bot Auth Signature-Agent of a known AI agent
    "hdr.signed_unknown": 5.0,  # Signature-Agent of someone else
    "hdr.ch_headless": 6.0,  # client hints name HeadlessChrome
    "hdr.from_email": 4.0,  # From: header with an address (crawler etiquette)
    "hdr.referrer_spam": 4.0,  # Referer host on the spam list
    "hdr.ch_version_mismatch": 3.0,  # Sec-CH-UA version differs from the UA's
    "hdr.ch_non_chromium": 2.5,  # client hints sent by a claimed Firefox or Safari
    "hdr.no_accept_language": 2.0,  # every browser sends Accept-Language
    "hdr.ch_platform_mismatch": 2.0,  # Sec-CH-UA-Platform differs from the UA's OS
    "hdr.ch_mobile_mismatch": 1.5,  # Sec-CH-UA-Mobile differs from the UA
    "hdr.no_accept": 1.0,  # every browser sends Accept
    "hdr.via": 0.3,  # went through a proxy (CDNs add Via too, hence small)
    "hdr.accept_language": -0.3,  # sends Accept-Language like a browser
    "hdr.prefetch": 0.0,  # Sec-Purpose: prefetch: flags the visit, weighs nothing
    # client network (layer 3)
    "ip.datacenter": 2.0,  # client IP in a cloud provider's published ranges
    # browser signals from the tracker (layer 4)
    "sig.automation_artefact": 7.5,  # __playwright, cdc_, callPhantom ...
    "sig.webdriver": 6.5,  # navigator.webdriver is true
    "sig.headless": 5.0,  # the tracker's headless checks fired
    "sig.no_languages": 2.0,  # navigator.languages is empty
    "sig.outer_zero": 2.0,  # outerWidth/outerHeight are 0
    "sig.chrome_obj_missing": 1.5,  # Chrome UA without window.chrome
    "sig.no_plugins": 1.2,  # desktop browser reporting no plugins
    "sig.touch_mismatch": 1.0,  # touch support contradicts the UA
    "sig.clean": -0.5,  # signals present and none of them suspicious
    # behaviour over a session (layer 5, rescore)
    "beh.regular_clicks": 2.5,  # click intervals machine-regular
    "beh.no_input": 2.5,  # several pages, no pointer, scroll or key
    "beh.fast_paging": 2.0,  # more pages a minute than a reader manages
    "beh.pointer_and_scroll": -2.5,  # pointer moved and page scrolled or clicked
    "beh.keypresses": -1.0,  # typed something
    "beh.irregular_clicks": -0.5,  # click intervals vary like a person's
    "beh.long_engagement": -0.5,  # engaged for a while
}

# Tier thresholds on the probability of being non-human, highest first.
TIERS: tuple[tuple[float, str], ...] = (
    (0.99, "definite"),
    (0.90, "likely"),
    (0.50, "suspicious"),
    (0.05, "likely-human"),
    (0.0, "human"),
)


# When several pieces of evidence name the client, the highest rank wins: what the UA
# declares, then a signed header, then the tracker's automation artefacts.
RANK_UA_AI = 100
RANK_UA_LIST = 90
RANK_SIGNED_HEADER = 80
RANK_ARTEFACT = 60
RANK_HEADLESS = 50
RANK_WEBDRIVER = 40


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a piece of evidence says the client is; the highest rank names the verdict."""

    name: str | None
    category: str | None
    operator: str | None
    rank: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observation: its weight (a row of WEIGHTS) and the sentence shown to users."""

    key: str
    llr: float
    reason: str
    identity: Identity | None = None


def evidence(key: str, reason: str, identity: Identity | None = None) -> Evidence:
    """Evidence weighted from the table (a KeyError here is a typo in the caller)."""
    return Evidence(key, WEIGHTS[key], reason, identity)


def probability(log_odds: float) -> float:
    """Logistic, written to stay finite for any float."""
    if log_odds >= 0:
        return 1.0 / (1.0 + math.exp(-min(log_odds, 700.0)))
    z = math.exp(max(log_odds, -700.0))
    return z / (1.0 + z)


def tier(p_bot: float) -> str:
    """The tier name for a probability of being non-human."""
    for threshold, name in TIERS:
        if p_bot >= threshold:
            return name
    return "human"
