"""Enrichment functions of the write path: user agent, country, source/channel, URL, ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulse.ingest import geo, referrers
from pulse.ingest.enrich import (
    DEVICES,
    UTM_KEYS,
    UserAgentInfo,
    classify_referrer,
    country_for,
    engagement_label,
    engagement_score,
    parse_user_agent,
    split_url,
    visitor_id,
)
from pulse.ingest.referrers import CHANNELS, ReferrerInfo, clean_host

NO_UTM: dict[str, str | None] = {}

CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/26.2 Safari/605.1.15"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0"
EDGE_WIN = CHROME_WIN + " Edg/142.0.3595.65"
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1"
)
CHROME_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) CriOS/142.0.7444.77 Mobile/15E148 Safari/604.1"
)
FIREFOX_ANDROID = "Mozilla/5.0 (Android 15; Mobile; rv:144.0) Gecko/144.0 Firefox/144.0"
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
GALAXY_TAB = (
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GPTBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot)"
)
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/142.0.0.0 Safari/537.36"
)


# ---------------------------------------------------------------- user agent


@pytest.mark.parametrize(
    ("ua", "expected"),
    [
        (CHROME_WIN, UserAgentInfo("Chrome", "142.0", "Windows", "desktop")),
        (SAFARI_MAC, UserAgentInfo("Safari", "26.2", "macOS", "desktop")),
        (FIREFOX_LINUX, UserAgentInfo("Firefox", "144.0", "Linux", "desktop")),
        (EDGE_WIN, UserAgentInfo("Edge", "142.0", "Windows", "desktop")),
        (CHROME_ANDROID, UserAgentInfo("Chrome", "142.0", "Android", "mobile")),
        (SAFARI_IPHONE, UserAgentInfo("Safari", "26.0", "iOS", "mobile")),
        (CHROME_IPHONE, UserAgentInfo("Chrome", "142.0", "iOS", "mobile")),
        (FIREFOX_ANDROID, UserAgentInfo("Firefox", "144.0", "Android", "mobile")),
        (SAFARI_IPAD, UserAgentInfo("Safari", "17.4", "iOS", "tablet")),
        (GALAXY_TAB, UserAgentInfo("Chrome", "142.0", "Android", "tablet")),
        (GOOGLEBOT, UserAgentInfo("Googlebot", "2.1", None, "bot")),
        (GPTBOT, UserAgentInfo("GPTBot", "1.2", None, "bot")),
        (HEADLESS, UserAgentInfo("HeadlessChrome", "142.0", "Linux", "bot")),
        ("curl/8.5.0", UserAgentInfo("curl", "8.5", None, "bot")),
        ("python-requests/2.32.3", UserAgentInfo("Python Requests", "2.32", None, "bot")),
    ],
)
def test_parse_user_agent_real_strings(ua, expected):
    assert parse_user_agent(ua) == expected


@pytest.mark.parametrize("ua", [None, "", "   ", "\x00", "x" * 100_000, "Mozilla/5.0 (🦄)"])
def test_parse_user_agent_odd_input_fits_the_columns(ua):
    info = parse_user_agent(ua)
    assert info.device in DEVICES
    assert info.browser is None or len(info.browser) <= 50
    assert info.os is None or len(info.os) <= 50
    assert info.browser_version is None or len(info.browser_version) <= 20


def test_parse_user_agent_is_cached():
    assert parse_user_agent(CHROME_WIN) is parse_user_agent(CHROME_WIN)


# ---------------------------------------------------------------- country


@pytest.mark.parametrize(
    ("ip", "country"),
    [
        ("8.8.8.8", "US"),  # Google Public DNS, ARIN
        ("1.1.1.1", "AU"),  # Cloudflare anycast; the block is APNIC's, registered in AU
        ("81.2.69.142", "GB"),  # Andrews & Arnold (MaxMind's documented GB example)
        ("193.0.6.139", "NL"),  # RIPE NCC, Amsterdam
        ("202.12.27.33", "JP"),  # M-root, WIDE Project
        ("200.160.2.3", "BR"),  # NIC.br
        ("2001:4860:4860::8888", "US"),  # Google Public DNS over IPv6
        ("::ffff:8.8.8.8", "US"),  # IPv4-mapped, as dual-stack sockets report it
        (" 8.8.8.8 ", "US"),
    ],
)
def test_country_for_public_addresses(ip, country):
    assert country_for(ip) == country


@pytest.mark.parametrize(
    "ip",
    [
        None, "", "garbage", "8.8.8", "999.1.1.1", "unknown", "8.8.8.8/24", "x" * 10_000,
        "10.0.0.1", "172.16.5.4", "192.168.1.1", "127.0.0.1", "::1", "fe80::1%eth0",
        "100.64.0.1", "169.254.1.1", "192.0.2.1", "2001:db8::1", "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "255.255.255.255", "fc00::1", "\x00", "81.2.69.142\x00",
    ],
)  # fmt: skip
def test_country_for_private_or_bad_input_is_none(ip):
    assert country_for(ip) is None


def test_country_for_survives_a_failing_database(monkeypatch):
    def broken(_ip: str) -> str | None:
        raise RuntimeError("corrupt")

    monkeypatch.setattr(geo, "_lookup", broken)
    assert country_for("8.8.8.8") is None


def test_country_for_drops_non_country_codes(monkeypatch):
    monkeypatch.setattr(geo, "_lookup", lambda _ip: "EU")
    assert country_for("8.8.8.8") is None


# ---------------------------------------------------------------- referrer


def classify(referrer, utm=NO_UTM, own="example.com"):
    return classify_referrer(referrer, own, utm)


@pytest.mark.parametrize(
    ("referrer", "host", "source", "channel"),
    [
        ("https://www.google.com/", "google.com", "Google", "organic-search"),
        ("https://www.google.co.uk/search?q=pulse", "google.co.uk", "Google", "organic-search"),
        ("https://google.com.au/", "google.com.au", "Google", "organic-search"),
        ("https://www.bing.com/search?q=x", "bing.com", "Bing", "organic-search"),
        ("https://duckduckgo.com/", "duckduckgo.com", "DuckDuckGo", "organic-search"),
        ("https://uk.search.yahoo.com/", "uk.search.yahoo.com", "Yahoo", "organic-search"),
        ("https://yandex.ru/", "yandex.ru", "Yandex", "organic-search"),
        ("https://search.brave.com/", "search.brave.com", "Brave Search", "organic-search"),
        ("https://t.co/abc", "t.co", "X (Twitter)", "organic-social"),
        ("https://l.facebook.com/l.php", "l.facebook.com", "Facebook", "organic-social"),
        ("https://news.ycombinator.com/item?id=1", "news.ycombinator.com", "Hacker News",
         "organic-social"),
        ("https://www.reddit.com/r/python", "reddit.com", "Reddit", "organic-social"),
        ("https://www.linkedin.com/feed/", "linkedin.com", "LinkedIn", "organic-social"),
        ("https://pinterest.co.uk/pin/1", "pinterest.co.uk", "Pinterest", "organic-social"),
        ("https://mail.google.com/mail/u/0/", "mail.google.com", "Gmail", "email"),
        ("https://outlook.live.com/mail/0/", "outlook.live.com", "Outlook", "email"),
        ("https://webmail.example-isp.net/", "webmail.example-isp.net",
         "webmail.example-isp.net", "email"),
        ("https://chatgpt.com/", "chatgpt.com", "ChatGPT", "ai-assistant"),
        ("https://chat.openai.com/c/1", "chat.openai.com", "ChatGPT", "ai-assistant"),
        ("https://www.perplexity.ai/search/x", "perplexity.ai", "Perplexity", "ai-assistant"),
        ("https://claude.ai/chat/1", "claude.ai", "Claude", "ai-assistant"),
        ("https://gemini.google.com/app", "gemini.google.com", "Gemini", "ai-assistant"),
        ("https://copilot.microsoft.com/", "copilot.microsoft.com", "Microsoft Copilot",
         "ai-assistant"),
        ("https://chat.mistral.ai/", "chat.mistral.ai", "Le Chat", "ai-assistant"),
        ("https://chat.deepseek.com/", "chat.deepseek.com", "DeepSeek", "ai-assistant"),
        ("https://grok.com/", "grok.com", "Grok", "ai-assistant"),
        ("https://www.youtube.com/watch?v=1", "youtube.com", "YouTube", "video"),
        ("https://github.com/org/repo", "github.com", "GitHub", "referral"),
        ("https://docs.google.com/document/d/1", "docs.google.com", "Google Docs", "referral"),
        ("https://blog.someone.dev/post", "blog.someone.dev", "blog.someone.dev", "referral"),
        ("android-app://com.google.android.gm/", "com.google.android.gm", "Gmail", "email"),
        ("android-app://com.google.android.googlequicksearchbox/",
         "com.google.android.googlequicksearchbox", "Google", "organic-search"),
        ("android-app://com.slack", "com.slack", "Slack", "organic-social"),
        ("android-app://com.example.reader", "com.example.reader", "com.example.reader",
         "referral"),
        ("https://BLOG.Someone.dev:8443/x", "blog.someone.dev", "blog.someone.dev", "referral"),
    ],
)  # fmt: skip
def test_classify_referrer_by_host(referrer, host, source, channel):
    assert classify(referrer) == ReferrerInfo(host, source, channel)


@pytest.mark.parametrize("referrer", [None, "", "not a url", "chrome-extension://abc/", "about:"])
def test_no_usable_referrer_is_direct(referrer):
    assert classify(referrer) == ReferrerInfo(None, None, "direct")


@pytest.mark.parametrize("own", ["example.com", "www.example.com", "EXAMPLE.com."])
def test_same_site_referrer_is_internal(own):
    assert classify("https://www.example.com/pricing", own=own) == ReferrerInfo(
        None, None, "internal"
    )


def test_subdomain_of_own_site_is_a_referral():
    assert classify("https://blog.example.com/").channel == "referral"


@pytest.mark.parametrize(
    ("referrer", "utm", "source", "channel"),
    [
        (None, {"utm_source": "chatgpt.com"}, "ChatGPT", "ai-assistant"),
        (None, {"utm_source": "perplexity"}, "Perplexity", "ai-assistant"),
        (None, {"utm_source": "google", "utm_medium": "cpc"}, "Google", "paid-search"),
        ("https://www.google.com/", {"utm_source": "spring", "utm_medium": "ppc"}, "Google",
         "paid-search"),
        (None, {"utm_source": "spring-sale", "utm_medium": "cpc"}, "spring-sale", "paid-search"),
        (None, {"utm_source": "fb", "utm_medium": "paid"}, "Facebook", "paid-social"),
        ("https://lm.facebook.com/", {"utm_medium": "paid_social"}, "Facebook", "paid-social"),
        (None, {"utm_source": "youtube", "utm_medium": "cpv"}, "YouTube", "video"),
        (None, {"utm_source": "weekly", "utm_medium": "email"}, "weekly", "email"),
        (None, {"utm_source": "newsletter"}, "newsletter", "email"),
        ("https://mail.google.com/", {"utm_source": "digest", "utm_medium": "Newsletter"},
         "Gmail", "email"),
        ("https://www.reddit.com/", {"utm_medium": "email"}, "Reddit", "email"),
        (None, {"utm_source": "facebook", "utm_medium": "social"}, "Facebook", "organic-social"),
        (None, {"utm_source": "acme", "utm_medium": "social"}, "acme", "organic-social"),
        (None, {"utm_source": "adnet", "utm_medium": "display"}, "adnet", "display"),
        (None, {"utm_source": "adnet", "utm_medium": "banner"}, "adnet", "display"),
        (None, {"utm_source": "adnet", "utm_medium": "retargeting"}, "adnet", "display"),
        (None, {"utm_source": "partner", "utm_medium": "affiliate"}, "partner", "affiliates"),
        (None, {"utm_source": "acme", "utm_medium": "organic"}, "acme", "organic-search"),
        (None, {"utm_source": "podcast"}, "podcast", "referral"),
        (None, {"utm_medium": "cpc"}, None, "paid-search"),
        ("https://www.example.com/", {"utm_source": "chatgpt.com"}, "ChatGPT", "ai-assistant"),
    ],
)  # fmt: skip
def test_utm_rules_override_the_referrer(referrer, utm, source, channel):
    info = classify(referrer, utm)
    assert (info.source, info.channel) == (source, channel)


def test_sources_file_is_consistent():
    raw = json.loads((Path(referrers.__file__).parent / "data" / "sources.json").read_text())
    seen: set[str] = set()
    for category in referrers.CATEGORY_CHANNEL:
        for name, patterns in raw[category].items():
            assert 0 < len(name) <= 100
            for pattern in patterns:
                host = pattern.removesuffix(".*")
                assert clean_host(host) == host, pattern  # lower-case, no www., a real host
                assert pattern not in seen, pattern
                seen.add(pattern)
    names = {name for category in referrers.CATEGORY_CHANNEL for name in raw[category]}
    assert set(raw["aliases"].values()) <= names


def test_clean_host():
    assert clean_host("WWW.Example.COM.") == "example.com"
    assert clean_host("bücher.de") == "xn--bcher-kva.de"
    assert clean_host("exa mple.com") is None
    assert clean_host("") is None


# ---------------------------------------------------------------- URL


@pytest.mark.parametrize(
    ("url", "hostname", "pathname"),
    [
        ("https://www.Example.com:8443/Blog/", "example.com", "/Blog"),
        ("https://example.com", "example.com", "/"),
        ("https://example.com/?utm_source=x#top", "example.com", "/"),
        ("https://example.com/a/b/?q=1#section", "example.com", "/a/b"),
        ("https://example.com/%7Euser/%41%62c", "example.com", "/~user/Abc"),
        ("https://example.com/a%2fb/%c3%a9", "example.com", "/a%2Fb/%C3%A9"),
        ("https://example.com/#/users/42/?tab=1", "example.com", "/#/users/42"),
        ("https://example.com/app/#!/settings", "example.com", "/app#!/settings"),
        ("https://example.com/#/", "example.com", "/"),
        ("https://bücher.de/katalog", "xn--bcher-kva.de", "/katalog"),
        ("http://[2001:db8::1]:8080/x", "2001:db8::1", "/x"),
        ("example.com/pricing", "example.com", "/pricing"),
        ("/relative/path/", "", "/relative/path"),
        ("javascript:alert(1)", "", "/"),
        ("http://[::1", "", "/"),
        ("", "", "/"),
        (None, "", "/"),
        ("https://example.com/" + "a" * 2000, "example.com", "/" + "a" * 1023),
        ("https://example.com/" + "a" * 1021 + "%2F", "example.com", "/" + "a" * 1021),
        ("https://example.com/a\x00b", "example.com", "/ab"),
    ],
)
def test_split_url_host_and_path(url, hostname, pathname):
    assert split_url(url)[:2] == (hostname, pathname)


def test_split_url_utm():
    _, _, utm = split_url(
        "https://example.com/?utm_source=Newsletter&UTM_MEDIUM=email&utm_campaign=launch+2026"
        "&utm_term=&utm_content=hero&utm_source=second"
    )
    assert utm == {
        "utm_source": "Newsletter",
        "utm_medium": "email",
        "utm_campaign": "launch 2026",
        "utm_term": None,
        "utm_content": "hero",
    }


@pytest.mark.parametrize(
    ("query", "source"),
    [("ref=producthunt", "producthunt"), ("source=hn", "hn"), ("ref=a&utm_source=b", "b")],
)
def test_split_url_ref_and_source_stand_in_for_utm_source(query, source):
    assert split_url(f"https://example.com/?{query}")[2]["utm_source"] == source


def test_split_url_reads_utm_inside_a_hash_route():
    assert split_url("https://example.com/#/p?utm_source=x")[2]["utm_source"] == "x"


def test_split_url_drops_what_postgresql_cannot_store():
    _, pathname, utm = split_url("https://e.com/a\ud800b?utm_source=a%00b")
    assert utm["utm_source"] == "ab"
    pathname.encode("utf-8")


def test_classify_referrer_drops_what_postgresql_cannot_store():
    info = classify_referrer(None, None, {"utm_source": "a\x00\ud800"})
    assert info.source is not None
    info.source.encode("utf-8")
    assert "\x00" not in info.source


def test_split_url_cuts_long_utm():
    assert len(split_url("https://e.com/?utm_campaign=" + "c" * 900)[2]["utm_campaign"]) == 255


# ---------------------------------------------------------------- fuzz

url_like = st.one_of(
    st.text(max_size=300),
    st.builds(
        lambda scheme, host, path, query, frag: f"{scheme}{host}{path}?{query}#{frag}",
        st.sampled_from(["https://", "http://", "", "//", "android-app://", "ftp://"]),
        st.text(max_size=80),
        st.text(max_size=1500),
        st.text(max_size=400),
        st.text(max_size=100),
    ),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(url_like)
def test_split_url_never_raises_and_fits(url):
    hostname, pathname, utm = split_url(url)
    assert len(hostname) <= 255
    assert pathname.startswith("/") and len(pathname) <= 1024
    assert set(utm) == set(UTM_KEYS)
    for value in (hostname, pathname, *utm.values()):
        assert value is None or ("\x00" not in value and len(value) <= 1024)
    assert all(value is None or len(value) <= 255 for value in utm.values())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    url_like,
    st.one_of(st.none(), st.text(max_size=80)),
    st.dictionaries(
        st.sampled_from(UTM_KEYS), st.one_of(st.none(), st.text(max_size=400)), max_size=5
    ),
)
def test_classify_referrer_never_raises_and_fits(referrer, own, utm):
    info = classify_referrer(referrer, own, utm)
    assert info.channel in CHANNELS
    assert info.referrer_host is None or 0 < len(info.referrer_host) <= 255
    assert info.source is None or 0 < len(info.source) <= 100
    assert info.source is None or "\x00" not in info.source


# ---------------------------------------------------------------- visitor id

SALT = bytes(range(32))


def test_visitor_id_is_stable_and_pinned():
    vid = visitor_id(SALT, 1, "203.0.113.9", CHROME_WIN)
    assert vid == visitor_id(SALT, 1, "203.0.113.9", CHROME_WIN)
    # Pinned: a change of formula would split every visitor of the day in two.
    assert vid == -6565181159910911367


def test_visitor_id_differs_by_salt_site_ip_and_ua():
    base = visitor_id(SALT, 1, "203.0.113.9", CHROME_WIN)
    others = {
        visitor_id(bytes(32), 1, "203.0.113.9", CHROME_WIN),
        visitor_id(SALT, 2, "203.0.113.9", CHROME_WIN),
        visitor_id(SALT, 1, "203.0.113.10", CHROME_WIN),
        visitor_id(SALT, 1, "203.0.113.9", FIREFOX_LINUX),
    }
    assert base not in others and len(others) == 4


@given(st.binary(min_size=32, max_size=32), st.integers(1, 2**31), st.text(), st.text())
def test_visitor_id_fits_a_bigint(salt, site_id, ip, ua):
    assert -(2**63) <= visitor_id(salt, site_id, ip, ua) < 2**63


# ---------------------------------------------------------------- engagement


@pytest.mark.parametrize(
    ("args", "label"),
    [
        ((1, 0, None, None, 0), "bounce"),
        ((1, 3, 3000, 20, 0), "bounce"),
        ((1, 9, None, 100, 0), "bounce"),  # GA4: not engaged, however far it scrolled
        ((2, 1, None, None, 0), "low"),  # two pages: engaged
        ((1, 0, 12_000, None, 0), "low"),  # ten seconds of attention: engaged
        ((1, 0, 1000, None, 1), "low"),  # an event: engaged
        ((1, 90, 90_000, 80, 0), "medium"),
        ((3, 120, 100_000, 70, 1), "medium"),
        ((6, 600, 400_000, 95, 4), "high"),
    ],
)
def test_engagement_score_and_label(args, label):
    score = engagement_score(*args)
    assert 0 <= score <= 100
    assert engagement_label(score) == label


def test_engagement_prefers_engaged_time_over_duration():
    assert engagement_score(1, 600, 5000, None, 0) < engagement_score(1, 600, None, None, 0)


def test_engagement_score_bounds_and_monotony():
    assert engagement_score(100, 10**6, 10**8, 100, 100) == 100.0
    assert engagement_score(0, -5, -1, -3, -2) == 0.0
    assert engagement_score(2, 60, None, None, 0) < engagement_score(4, 60, None, None, 0)
    assert engagement_label(None) == "bounce"
    assert [engagement_label(s) for s in (0, 9.9, 10, 39.9, 40, 69.9, 70, 100)] == [
        "bounce", "bounce", "low", "low", "medium", "medium", "high", "high",
    ]  # fmt: skip


@given(
    st.integers(-10, 10**6), st.integers(-10, 10**7),
    st.one_of(st.none(), st.integers(-10, 10**9)), st.one_of(st.none(), st.integers(-10, 200)),
    st.integers(-10, 10**6),
)  # fmt: skip
def test_engagement_score_always_in_range(pageviews, duration, engaged, scroll, events):
    assert 0.0 <= engagement_score(pageviews, duration, engaged, scroll, events) <= 100.0


def test_split_url_is_memoised_but_each_caller_owns_its_utm():
    url = "https://shop.example/p?utm_source=news&utm_medium=email"
    first = split_url(url)
    first[2]["utm_source"] = "changed by a caller"
    second = split_url(url)
    assert second[2]["utm_source"] == "news" and second[:2] == ("shop.example", "/p")
    assert split_url("https://shop.example/" + "a" * 5000)[0] == "shop.example"
