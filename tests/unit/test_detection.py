"""pulse.detection: humans, bots and AI agents, each verdict with its reasons.

User agents below are real strings copied from public sources: operators' documentation
and the crawler-user-agents list for bots and agents; for browsers, request logs and
UA tables published in 2025-2026 (Chrome 142, Firefox 144, Safari 26 / iOS 18.6).
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulse.detection import Verdict, classify, rescore
from pulse.detection.network import cloud_provider
from pulse.detection.scoring import TIERS, WEIGHTS
from pulse.detection.verdict import AI_CATEGORIES, CATEGORY_LABELS

AGENTS = json.loads(
    (Path(__file__).parents[2] / "pulse" / "detection" / "ai_agents.json").read_text()
)["agents"]

GPTBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.0; "
    "+https://openai.com/gptbot)"
)
CHATGPT_USER = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; ChatGPT-User/1.0; "
    "+https://openai.com/bot"
)
CLAUDEBOT = (
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; "
    "+claudebot@anthropic.com)"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
GOOGLEBOT_SMARTPHONE = (
    "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/41.0.2272.96 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html)"
)
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Mobile Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/26.2 Safari/605.1.15"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/26.0 Mobile/15E148 Safari/604.1"
)
FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:144.0) Gecko/20100101 Firefox/144.0"
FIREFOX_ANDROID = "Mozilla/5.0 (Android 16; Mobile; rv:144.0) Gecko/144.0 Firefox/144.0"
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.0.0 Safari/537.36"
)

HTML_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BASE_HEADERS = {
    "Accept": HTML_ACCEPT,
    "Accept-Language": "en-US,en;q=0.9",
    "Accept-Encoding": "gzip",
}
CHROME_HINTS = '"Chromium";v="142", "Google Chrome";v="142", "Not_A Brand";v="99"'


def chrome_headers(platform: str, mobile: bool) -> dict[str, str]:
    return {
        **BASE_HEADERS,
        "Sec-CH-UA": CHROME_HINTS,
        "Sec-CH-UA-Mobile": "?1" if mobile else "?0",
        "Sec-CH-UA-Platform": f'"{platform}"',
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "navigate",
    }


AWS_IP = "3.5.140.2"  # inside AWS's published 3.5.140.0/22


def assert_invariants(verdict: Verdict) -> None:
    assert 0.0 <= verdict.confidence <= 1.0
    assert 0.0 <= verdict.bot_probability <= 1.0
    assert verdict.tier in {name for _, name in TIERS}
    assert verdict.label in {"human", "bot", "agent"}
    if verdict.label == "human":
        assert verdict.category is None
    else:
        assert verdict.category in CATEGORY_LABELS
        assert verdict.reasons, "every non-human verdict must say why"
        assert (verdict.label == "agent") == (verdict.category in AI_CATEGORIES)
    assert all(isinstance(reason, str) and reason for reason in verdict.reasons)


# -- layer 1: user agents ------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "name", "operator"),
    [
        (GPTBOT, "GPTBot", "OpenAI"),
        (CHATGPT_USER, "ChatGPT-User", "OpenAI"),
        (CLAUDEBOT, "ClaudeBot", "Anthropic"),
    ],
)
def test_ai_agents_are_agents(user_agent, name, operator):
    verdict = classify(user_agent, BASE_HEADERS)
    assert (verdict.label, verdict.name, verdict.operator) == ("agent", name, operator)
    assert verdict.tier == "definite"
    assert verdict.declared
    assert any(name in reason for reason in verdict.reasons)


@pytest.mark.parametrize("user_agent", [GOOGLEBOT, GOOGLEBOT_SMARTPHONE])
def test_googlebot_is_a_search_crawler(user_agent):
    verdict = classify(user_agent)
    assert (verdict.label, verdict.name, verdict.category) == ("bot", "Googlebot", "search-crawler")
    assert verdict.operator == "Google"
    assert verdict.tier == "definite"


@pytest.mark.parametrize(
    ("user_agent", "name"),
    [
        ("curl/8.5.0", "curl"),
        ("python-requests/2.32.3", "python-requests"),
        ("Go-http-client/2.0", "Go-http-client"),
        ("PostmanRuntime/7.39.0", "PostmanRuntime"),
        ("Java/17.0.2", "Java"),
    ],
)
def test_http_libraries_are_bots(user_agent, name):
    verdict = classify(user_agent, {"Accept": "*/*"})
    assert (verdict.label, verdict.name, verdict.category) == ("bot", name, "http-library")


@pytest.mark.parametrize(
    ("user_agent", "headers", "name"),
    [
        (CHROME_WINDOWS, chrome_headers("Windows", False), "Chrome"),
        (CHROME_MAC, chrome_headers("macOS", False), "Chrome"),
        (CHROME_ANDROID, chrome_headers("Android", True), "Chrome"),
        (SAFARI_MAC, BASE_HEADERS, "Safari"),
        (SAFARI_IPHONE, BASE_HEADERS, "Safari"),
        (FIREFOX_WINDOWS, BASE_HEADERS, "Firefox"),
        (FIREFOX_ANDROID, BASE_HEADERS, "Firefox"),
    ],
)
def test_current_browsers_are_human(user_agent, headers, name):
    verdict = classify(user_agent, headers)
    assert (verdict.label, verdict.name, verdict.category) == ("human", name, None)
    assert verdict.tier in {"human", "likely-human"}
    assert verdict.confidence > 0.9


@pytest.mark.parametrize("entry", AGENTS, ids=[entry["name"] for entry in AGENTS])
def test_every_ai_list_entry_matches_its_own_sample(entry):
    verdict = classify(entry["sample"], entry.get("sample_headers"))
    assert verdict.name == entry["name"]
    assert verdict.category == entry["category"]
    assert verdict.label == "agent"


def test_ai_list_is_well_formed():
    names = [entry["name"] for entry in AGENTS]
    assert len(names) == len(set(names))
    for entry in AGENTS:
        assert entry["category"] in AI_CATEGORIES, entry["name"]
        assert isinstance(entry["verified"], bool)
        assert entry["sample"] and entry["url"].startswith("http")
        assert entry.get("pattern") or entry.get("signature_agent"), entry["name"]
        if not entry["verified"]:
            assert entry.get("note"), f"{entry['name']}: say why it is unverified"
    required = {
        "GPTBot", "ChatGPT-User", "OAI-SearchBot", "ChatGPT Agent", "ClaudeBot", "Claude-User",
        "Claude-SearchBot", "anthropic-ai", "Claude-Web", "PerplexityBot", "Perplexity-User",
        "Google-Extended", "Google-CloudVertexBot", "Gemini-Deep-Research", "GoogleAgent-Mariner",
        "Applebot-Extended", "Bytespider", "CCBot", "Meta-ExternalAgent", "Meta-ExternalFetcher",
        "FacebookBot", "Amazonbot", "cohere-ai", "cohere-training-data-crawler", "Diffbot",
        "YouBot", "DuckAssistBot", "MistralAI-User", "AI2Bot", "Ai2Bot-Dolma", "PetalBot",
        "ImagesiftBot", "Timpibot", "omgili", "Kangaroo Bot", "PanguBot", "Devin",
    }  # fmt: skip
    assert required <= set(names)


def test_generic_matcher_agrees_with_crawler_user_agents():
    # Our fast matcher (literal prefilter + trigram index) must find what the package finds.
    import crawleruseragents

    from pulse.detection.crawlers import match as match_crawler

    for row in crawleruseragents.CRAWLER_USER_AGENTS_DATA:
        for instance in row.get("instances", []):
            found = crawleruseragents.is_crawler(instance)
            assert found == (match_crawler(instance) is not None), instance


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("[cC]laude[bB]ot", "laude"),
        ("Googlebot\\/", "Googlebot/"),
        ("omgili(?:bot)?", "omgili"),
        ("abcx{0,3}", "abc"),
        ("Spider[\\s\\S]*spider\\.com", "spider.com"),
        ("AdsBot-Google([^-]|$)", None),
        ("(?i)foobot", None),
    ],
)
def test_required_literal(pattern, literal):
    from pulse.detection.crawlers import required_literal

    assert required_literal(pattern) == literal


def test_ai_list_wins_over_the_generic_list():
    # crawler-user-agents knows Amazonbot as a search engine; the AI list says otherwise.
    sample = next(entry["sample"] for entry in AGENTS if entry["name"] == "Amazonbot")
    assert classify(sample).category == "ai-crawler"


def test_headless_chrome_is_a_headless_bot():
    verdict = classify(HEADLESS_CHROME, BASE_HEADERS)
    assert (verdict.label, verdict.category, verdict.name) == ("bot", "headless", "HeadlessChrome")


@pytest.mark.parametrize(
    ("marker", "name"),
    [(" Playwright/1.40.0", "Playwright"), (" Puppeteer", "Puppeteer"), ("; Selenium", "Selenium")],
)
def test_automation_markers_in_the_user_agent(marker, name):
    verdict = classify(CHROME_WINDOWS + marker, BASE_HEADERS)
    assert (verdict.label, verdict.category, verdict.name) == ("bot", "automation", name)


@pytest.mark.parametrize("user_agent", [None, "", "   "])
def test_missing_user_agent_is_a_suspicious_or_likely_bot(user_agent):
    verdict = classify(user_agent, {"Accept": "*/*", "Accept-Language": "en"})
    assert verdict.label == "bot"
    assert verdict.tier in {"suspicious", "likely"}
    assert "User-Agent" in verdict.reasons[0]


def test_unknown_self_declared_bot():
    verdict = classify("Mozilla/5.0 (compatible; ExampleSiteCheck/1.0; +https://example.org/bot)")
    assert verdict.label == "bot"


# -- layer 2: headers ----------------------------------------------------------------


def test_chrome_without_accept_language_from_the_cloud_is_at_least_suspicious():
    verdict = classify(CHROME_WINDOWS, {"Accept": HTML_ACCEPT}, ip=AWS_IP)
    assert verdict.label == "bot"
    assert verdict.tier in {"suspicious", "likely", "definite"}
    assert "no Accept-Language header" in verdict.reasons
    assert "client IP is in AWS cloud range" in verdict.reasons


def test_header_names_are_case_insensitive():
    upper = classify(CHROME_WINDOWS, {"ACCEPT": HTML_ACCEPT, "ACCEPT-LANGUAGE": "de"})
    lower = classify(CHROME_WINDOWS, {"accept": HTML_ACCEPT, "accept-language": "de"})
    assert upper == lower
    assert "no Accept-Language header" not in upper.reasons


def test_werkzeug_headers_and_pairs_are_accepted():
    from werkzeug.datastructures import Headers

    headers = chrome_headers("Windows", False)
    expected = classify(CHROME_WINDOWS, headers)
    assert classify(CHROME_WINDOWS, Headers(headers)) == expected
    assert classify(CHROME_WINDOWS, list(headers.items())) == expected


def test_client_hint_version_contradiction_gives_a_reason():
    headers = {
        **chrome_headers("Windows", False),
        "Sec-CH-UA": '"Chromium";v="120", "Not_A Brand";v="99"',
    }
    verdict = classify(CHROME_WINDOWS, headers)
    assert any("Sec-CH-UA says Chromium 120" in reason for reason in verdict.reasons)
    assert (
        verdict.bot_probability
        > classify(CHROME_WINDOWS, chrome_headers("Windows", False)).bot_probability
    )


def test_client_hints_from_a_claimed_firefox_give_a_reason():
    verdict = classify(FIREFOX_WINDOWS, {**BASE_HEADERS, "Sec-CH-UA": CHROME_HINTS})
    assert any("claims Firefox" in reason for reason in verdict.reasons)


def test_client_hint_platform_and_mobile_contradictions():
    verdict = classify(CHROME_WINDOWS, chrome_headers("Android", True))
    assert any("Sec-CH-UA-Platform says Android" in reason for reason in verdict.reasons)
    assert any("Sec-CH-UA-Mobile is ?1" in reason for reason in verdict.reasons)


def test_headless_brand_in_client_hints():
    headers = {**BASE_HEADERS, "Sec-CH-UA": '"HeadlessChrome";v="142", "Chromium";v="142"'}
    verdict = classify(CHROME_WINDOWS, headers)
    assert (verdict.label, verdict.category) == ("bot", "headless")


@pytest.mark.parametrize(
    "referer",
    ["https://semalt.com/", "http://www.semalt.com/crawler.php?u=x", "http://ILOVEVITALY.COM"],
)
def test_referrer_spam(referer):
    verdict = classify(CHROME_WINDOWS, {**BASE_HEADERS, "Referer": referer})
    assert any("referrer-spam" in reason for reason in verdict.reasons)


@pytest.mark.parametrize(
    "referer", ["https://news.ycombinator.com/", "not a url", "http://[::1", ""]
)
def test_honest_or_broken_referrers_are_not_spam(referer):
    verdict = classify(CHROME_WINDOWS, {**BASE_HEADERS, "Referer": referer})
    assert not any("referrer-spam" in reason for reason in verdict.reasons)


@pytest.mark.parametrize(
    "header",
    [("Sec-Purpose", "prefetch"), ("Sec-Purpose", "prefetch;prerender"), ("Purpose", "prefetch")],
)
def test_prefetch_is_flagged_not_counted(header):
    verdict = classify(CHROME_WINDOWS, {**chrome_headers("Windows", False), header[0]: header[1]})
    assert verdict.prefetch is True
    assert verdict.label == "human" and verdict.category is None
    assert any("prefetch" in reason for reason in verdict.reasons)
    assert classify(CHROME_WINDOWS, chrome_headers("Windows", False)).prefetch is False


def test_from_header_and_via():
    verdict = classify(
        CHROME_WINDOWS, {**BASE_HEADERS, "From": "crawler@example.org", "Via": "1.1 proxy"}
    )
    assert any("From header" in reason for reason in verdict.reasons)
    assert any("Via" in reason for reason in verdict.reasons)


def test_chatgpt_agent_is_named_by_its_signature_agent_header():
    headers = {**chrome_headers("macOS", False), "Signature-Agent": '"https://chatgpt.com"'}
    verdict = classify(CHROME_MAC, headers)
    assert (verdict.label, verdict.name, verdict.operator) == ("agent", "ChatGPT Agent", "OpenAI")
    # ChatGPT-User signs the same way; its user agent names it first.
    assert (
        classify(CHATGPT_USER, {"Signature-Agent": '"https://chatgpt.com"'}).name == "ChatGPT-User"
    )


def test_unknown_signature_agent_is_still_a_bot():
    verdict = classify(
        CHROME_MAC, {**BASE_HEADERS, "Signature-Agent": 'sig1="https://signer.example"'}
    )
    assert verdict.label == "bot"
    assert any("signer.example" in reason for reason in verdict.reasons)


# -- layer 3: network ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "provider"),
    [
        (AWS_IP, "AWS"),
        ("::ffff:3.5.140.2", "AWS"),
        ("2600:1f18::1", "AWS"),
        ("192.168.1.10", None),
        ("127.0.0.1", None),
        ("not an ip", None),
        ("", None),
    ],
)
def test_cloud_provider_lookup(ip, provider):
    assert cloud_provider(ip) == provider


def test_ranges_file_is_sorted_and_parses():
    path = Path(__file__).parents[2] / "pulse" / "detection" / "datacenter_ranges.txt"
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    nets = [ipaddress.ip_network(line.split(" ", 1)[0]) for line in lines]
    assert len(nets) > 1000
    keys = [(net.version, int(net.network_address)) for net in nets]
    assert keys == sorted(keys)


def test_the_ip_never_appears_in_the_verdict():
    verdict = classify(CHROME_WINDOWS, {"Accept": "*/*"}, ip=AWS_IP)
    assert AWS_IP not in json.dumps(verdict.to_dict())
    assert AWS_IP not in repr(verdict)


# -- layer 4: browser signals --------------------------------------------------------


def test_webdriver_makes_a_chrome_ua_an_automation_bot():
    verdict = classify(CHROME_WINDOWS, chrome_headers("Windows", False), {"webdriver": True})
    assert (verdict.label, verdict.category) == ("bot", "automation")
    assert verdict.tier in {"likely", "definite"}
    assert "navigator.webdriver is true" in verdict.reasons


@pytest.mark.parametrize(
    ("artefact", "name"),
    [
        ("__playwright__binding__", "Playwright"),
        ("__pwInitScripts", "Playwright"),
        ("__puppeteer_evaluation_script__", "Puppeteer"),
        ("cdc_adoQpoasnfa76pfcZLmcfl_Array", "Selenium"),
        ("__selenium_unwrapped", "Selenium"),
        ("callPhantom", "PhantomJS"),
        ("_phantom", "PhantomJS"),
        ("domAutomation", "ChromeDriver"),
    ],
)
def test_automation_artefacts_name_the_tool(artefact, name):
    verdict = classify(CHROME_WINDOWS, chrome_headers("Windows", False), {"automation": [artefact]})
    assert (verdict.label, verdict.category, verdict.name) == ("bot", "automation", name)
    assert verdict.tier in {"likely", "definite"}


def test_weaker_signals_add_up():
    signals = {"plugins": 0, "languages": 0, "outer_zero": True, "chrome_obj_missing": True}
    verdict = classify(CHROME_WINDOWS, chrome_headers("Windows", False), signals)
    assert verdict.label == "bot"
    assert len(verdict.reasons) >= 4


def test_headless_signal():
    verdict = classify(CHROME_WINDOWS, chrome_headers("Windows", False), {"headless": True})
    assert (verdict.category, verdict.name) == ("headless", "HeadlessChrome")


def test_clean_signals_lean_human():
    clean = {"webdriver": False, "plugins": 5, "languages": 2, "automation": []}
    with_signals = classify(CHROME_WINDOWS, chrome_headers("Windows", False), clean)
    without = classify(CHROME_WINDOWS, chrome_headers("Windows", False))
    assert with_signals.bot_probability < without.bot_probability


# -- layer 5: behaviour --------------------------------------------------------------

HUMAN_SESSION = {
    "pointer_moves": 240, "scrolls": 12, "keypresses": 9, "clicks": 5, "engaged_ms": 94_000,
    "pageviews": 3, "duration_s": 180, "click_intervals_ms": [2300, 11800, 900, 5600, 31000],
}  # fmt: skip
ROBOT_SESSION = {
    "pointer_moves": 0, "scrolls": 0, "keypresses": 0, "clicks": 8, "engaged_ms": 1200,
    "pageviews": 40, "duration_s": 60, "click_intervals_ms": [500, 501, 499, 500, 500, 502],
}  # fmt: skip


def test_human_behaviour_lowers_an_uncertain_verdict():
    suspicious = classify(CHROME_WINDOWS, {"Accept": HTML_ACCEPT}, ip=AWS_IP)
    assert suspicious.label == "bot"
    rescored = rescore(suspicious, HUMAN_SESSION)
    assert rescored.bot_probability < suspicious.bot_probability
    assert rescored.label == "human" and rescored.category is None
    assert set(suspicious.reasons) <= set(rescored.reasons)
    assert any("pointer moved" in reason for reason in rescored.reasons)


def test_robotic_behaviour_raises_a_human_verdict():
    human = classify(CHROME_WINDOWS, chrome_headers("Windows", False))
    rescored = rescore(human, ROBOT_SESSION)
    assert rescored.bot_probability > human.bot_probability
    assert rescored.label == "bot" and rescored.category == "automation"
    assert any("like a script" in reason for reason in rescored.reasons)


def test_behaviour_never_overturns_a_declared_agent():
    agent = classify(GPTBOT, BASE_HEADERS)
    assert rescore(agent, HUMAN_SESSION) is agent


def test_rescore_keeps_the_identity_of_an_automation_verdict():
    bot = classify(CHROME_WINDOWS, BASE_HEADERS, {"automation": ["__pwInitScripts"]})
    assert rescore(bot, ROBOT_SESSION).name == "Playwright"


@given(
    st.dictionaries(
        st.text(max_size=20), st.from_type(object) | st.lists(st.integers() | st.floats())
    )
)
@settings(max_examples=200, deadline=None)
def test_rescore_never_raises(behaviour):
    assert_invariants(rescore(classify(CHROME_WINDOWS), behaviour))


numbers = st.none() | st.integers() | st.floats() | st.booleans() | st.text(max_size=5)
behaviours = st.fixed_dictionaries(
    {},
    optional={
        key: numbers
        for key in (
            "pointer_moves", "scrolls", "keypresses", "clicks", "engaged_ms", "pageviews",
            "duration_s", "pages_per_minute",
        )
    }
    | {"click_intervals_ms": st.lists(numbers, max_size=12) | numbers},
)  # fmt: skip


@given(behaviours)
@settings(max_examples=300, deadline=None)
def test_rescore_with_the_real_keys_never_raises(behaviour):
    for verdict in (classify(CHROME_WINDOWS), classify(CHROME_WINDOWS, {}, ip=AWS_IP)):
        assert_invariants(rescore(verdict, behaviour))


# -- contract -------------------------------------------------------------------------


def test_to_dict_is_plain_json():
    data = classify(GPTBOT).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert set(data) >= {"label", "name", "category", "confidence", "tier", "reasons", "operator"}


def test_verdict_is_frozen():
    verdict = classify(GPTBOT)
    with pytest.raises(AttributeError):
        verdict.label = "human"  # type: ignore[misc]


def test_weights_table_signs():
    assert WEIGHTS["ua.browser"] < 0 < WEIGHTS["ua.crawler"]
    assert WEIGHTS["hdr.prefetch"] == 0
    thresholds = [threshold for threshold, _ in TIERS]
    assert thresholds == sorted(thresholds, reverse=True)


KNOWN_UAS = [
    GPTBOT,
    CHATGPT_USER,
    CLAUDEBOT,
    GOOGLEBOT,
    CHROME_WINDOWS,
    SAFARI_IPHONE,
    HEADLESS_CHROME,
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
HEADER_NAMES = [
    "Accept", "Accept-Language", "Sec-CH-UA", "Sec-CH-UA-Mobile", "Sec-CH-UA-Platform",
    "Referer", "From", "Via", "Sec-Purpose", "Signature-Agent",
]  # fmt: skip
SIGNAL_NAMES = [
    "webdriver", "headless", "plugins", "languages", "automation", "outer_zero",
    "touch_mismatch", "chrome_obj_missing",
]  # fmt: skip
header_maps = (
    st.none()
    | st.dictionaries(
        st.sampled_from(HEADER_NAMES) | st.text(max_size=20),
        st.text(max_size=80) | json_values,
        max_size=8,
    )
    | st.lists(st.tuples(st.sampled_from(HEADER_NAMES), st.text(max_size=40)), max_size=6)
    | json_values
)
signal_maps = (
    st.none()
    | st.dictionaries(st.sampled_from(SIGNAL_NAMES) | st.text(max_size=10), json_values, max_size=8)
    | json_values
)
user_agents = (
    st.none() | st.text(max_size=600) | st.sampled_from(KNOWN_UAS) | st.integers() | st.binary()
)
ips = st.none() | st.text(max_size=50) | st.ip_addresses().map(str) | st.integers()


@given(user_agents, header_maps, signal_maps, ips)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_classify_never_raises_and_keeps_its_invariants(user_agent, headers, signals, ip):
    verdict = classify(user_agent, headers, signals, ip)  # type: ignore[arg-type]
    assert isinstance(verdict, Verdict)
    assert_invariants(verdict)
    json.dumps(verdict.to_dict())


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_any_text_user_agent(user_agent):
    assert_invariants(classify(user_agent, BASE_HEADERS))


def test_common_browser_case_is_fast():
    headers = chrome_headers("Windows", False)
    classify(CHROME_WINDOWS, headers, ip="203.0.113.9")  # warm the caches and ranges
    calls = 2000
    started = time.perf_counter()
    for _ in range(calls):
        classify(CHROME_WINDOWS, headers, ip="203.0.113.9")
    per_call = (time.perf_counter() - started) / calls
    assert per_call < 500e-6  # target is well under 50 µs; this only catches gross regressions


@pytest.mark.parametrize(
    ("ua", "headers", "ip"),
    [
        (CHROME_WINDOWS, chrome_headers("Windows", False), "81.2.69.142"),
        (CHROME_WINDOWS, chrome_headers("Windows", False), AWS_IP),
        (CHROME_WINDOWS, {"Accept": HTML_ACCEPT}, None),
        (HEADLESS_CHROME, dict(BASE_HEADERS), "81.2.69.142"),
        (CHROME_MAC, {}, None),
        ("x" * 2000, dict(BASE_HEADERS), None),  # too big for the memo
        (CHROME_MAC, {"Accept": ["not", "text"]}, None),  # unhashable: classified uncached
    ],
)
def test_memoised_verdicts_equal_fresh_ones_and_key_on_the_provider(ua, headers, ip):
    from pulse.detection.classifier import _classify

    fresh = _classify(ua, headers, None, cloud_provider(ip))
    assert classify(ua, headers, ip=ip) == fresh
    assert classify(ua, dict(headers), ip=ip) == fresh  # the second call comes from the memo
    if ip == AWS_IP:  # another address of the same provider: the same verdict, with the reason
        other = classify(ua, headers, ip="3.5.140.3")
        assert other == fresh and any("cloud range" in r for r in other.reasons)
    else:  # the same request from a cloud address is not served the memo of a home address
        assert classify(ua, headers, ip=AWS_IP).log_odds > fresh.log_odds
