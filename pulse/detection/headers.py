"""Layer 2: request headers that browsers always send, or never send.

Takes headers already lower-cased by the caller. A prefetch is not evidence either way;
it only raises the `prefetch` flag so the visit is not counted as a pageview.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pulse.detection.scoring import RANK_HEADLESS, RANK_SIGNED_HEADER, Evidence, Identity, evidence
from pulse.detection.useragent import UAFacts, signer


def _load_spam() -> frozenset[str]:
    text = Path(__file__).with_name("referrer_spam.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


REFERRER_SPAM = _load_spam()
_BRAND = re.compile(r'"([^"]{1,64})"\s*;\s*v\s*=\s*"(\d{1,6})')
_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[A-Za-z]{2,}")
_SIGNER_HOST = re.compile(r"https?://([A-Za-z0-9.\-]{1,253})")
_PREFETCH = re.compile(r"prefetch|prerender|preview", re.IGNORECASE)
_CHROMIUM_FAMILIES = frozenset(
    {"Chrome", "Chromium", "Edge", "Opera", "Samsung Internet", "Electron"}
)
_NO_CLIENT_HINTS = frozenset({"Firefox", "Safari"})
# Chrome's "desktop site" mode on Android sends a Linux UA but still hints Android.
_COMPATIBLE_PLATFORMS = frozenset({("Android", "Linux")})
_CH_PLATFORMS = {
    "windows": "Windows",
    "macos": "macOS",
    "android": "Android",
    "linux": "Linux",
    "chrome os": "Chrome OS",
    "chromium os": "Chrome OS",
    "ios": "iOS",
}


def is_prefetch(h: Mapping[str, str]) -> bool:
    """Speculative loads: Sec-Purpose (standard), Purpose and X-Moz (older browsers)."""
    for name in ("sec-purpose", "purpose", "x-moz", "x-purpose"):
        value = h.get(name)
        if value and _PREFETCH.search(value):
            return True
    return False


def referrer_spam_host(referer: str | None) -> str | None:
    """The listed spam domain the Referer's host belongs to, if any."""
    if not referer:
        return None
    try:
        host = urlsplit(referer.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    labels = host.lower().rstrip(".").split(".")
    for start in range(len(labels) - 1):
        candidate = ".".join(labels[start:])
        if candidate in REFERRER_SPAM:
            return candidate
    return None


def _client_hints(h: Mapping[str, str], ua: UAFacts) -> list[Evidence]:
    items: list[Evidence] = []
    sec_ch_ua = h.get("sec-ch-ua")
    if sec_ch_ua:
        brands = {name.strip(): int(version) for name, version in _BRAND.findall(sec_ch_ua)}
        if any("headless" in name.lower() for name in brands):
            ident = Identity("HeadlessChrome", "headless", None, RANK_HEADLESS)
            items.append(evidence("hdr.ch_headless", "Sec-CH-UA names HeadlessChrome", ident))
        if ua.client in _NO_CLIENT_HINTS:
            items.append(
                evidence(
                    "hdr.ch_non_chromium",
                    f"client hints sent, but the user agent claims {ua.client}, which sends none",
                )
            )
        hinted = (
            brands.get("Chromium") or brands.get("Google Chrome") or brands.get("Microsoft Edge")
        )
        if ua.client in _CHROMIUM_FAMILIES and ua.chromium and hinted and hinted != ua.chromium:
            items.append(
                evidence(
                    "hdr.ch_version_mismatch",
                    f"Sec-CH-UA says Chromium {hinted}, the user agent Chrome {ua.chromium}",
                )
            )
    if ua.client not in _CHROMIUM_FAMILIES:
        return items
    mobile = h.get("sec-ch-ua-mobile", "").strip()
    if (mobile == "?1" and not ua.mobile) or (mobile == "?0" and ua.mobile):
        items.append(
            evidence(
                "hdr.ch_mobile_mismatch",
                f"Sec-CH-UA-Mobile is {mobile} but the user agent is "
                f"{'mobile' if ua.mobile else 'desktop'}",
            )
        )
    platform = _CH_PLATFORMS.get(h.get("sec-ch-ua-platform", "").strip().strip('"').lower())
    if (
        platform
        and ua.platform
        and platform != ua.platform
        and (platform, ua.platform) not in _COMPATIBLE_PLATFORMS
    ):
        items.append(
            evidence(
                "hdr.ch_platform_mismatch",
                f"Sec-CH-UA-Platform says {platform} but the user agent says {ua.platform}",
            )
        )
    return items


def _signature_agent(value: str) -> Evidence:
    hosts = _SIGNER_HOST.findall(value)
    for host in hosts:
        agent = signer(host)
        if agent is not None:
            ident = Identity(agent.name, agent.category, agent.operator, RANK_SIGNED_HEADER)
            return evidence(
                "hdr.signed_agent",
                f"request is signed as {agent.name} (Signature-Agent: {host})",
                ident,
            )
    shown = hosts[0] if hosts else "unparsed"
    return evidence(
        "hdr.signed_unknown", f"request carries a bot signature (Signature-Agent: {shown})"
    )


def header_evidence(h: Mapping[str, str], ua: UAFacts) -> list[Evidence]:
    """Evidence from lower-cased request headers; see scoring.WEIGHTS for the weights."""
    items: list[Evidence] = []
    if h.get("accept-language", "").strip():
        items.append(evidence("hdr.accept_language", "sends Accept-Language like a browser"))
    else:
        items.append(evidence("hdr.no_accept_language", "no Accept-Language header"))
    if not h.get("accept", "").strip():
        items.append(evidence("hdr.no_accept", "no Accept header"))
    items += _client_hints(h, ua)
    sender = h.get("from")
    if sender and _EMAIL.search(sender):
        items.append(
            evidence("hdr.from_email", "From header carries a contact address, as crawlers do")
        )
    if h.get("via"):
        items.append(evidence("hdr.via", "request came through a proxy (Via header)"))
    spam = referrer_spam_host(h.get("referer"))
    if spam:
        items.append(
            evidence("hdr.referrer_spam", f"referrer {spam} is a known referrer-spam domain")
        )
    signature_agent = h.get("signature-agent")
    if signature_agent:
        items.append(_signature_agent(signature_agent))
    return items
