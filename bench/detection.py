"""Latency of pulse.detection.classify on a mix of 10,000 requests.

    .venv/bin/python bench/detection.py [--calls 10000] [--seed 7]

The mix is about 70% browsers, 20% bots from the crawler-user-agents list and 10% AI
agents from ai_agents.json, with browser-like or bare headers and a client IP (some in
cloud ranges). Three figures: the mix as production sees it (the per-UA cache warms as
UAs repeat), the mix with the UA cache cleared before every call (first sight of every
UA), and the common case alone (a known browser UA with full headers and an IP).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from crawleruseragents import CRAWLER_USER_AGENTS_DATA

import pulse.detection
from pulse.detection import classify
from pulse.detection.network import load
from pulse.detection.useragent import clear_cache

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:144.0) Gecko/20100101 Firefox/144.0",
    "Mozilla/5.0 (Android 16; Mobile; rv:144.0) Gecko/144.0 Firefox/144.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
    "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    "Mozilla/5.0 (Linux; Android 10; K) "
    "AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 "
    "Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) "
    "AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/142.0.7444.77 Mobile/15E148 Safari/604.1",
]
BROWSER_HEADERS = {
    "Host": "example.com",
    "Accept": "*/*",
    "Accept-Language": "en-GB,en;q=0.9",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Referer": "https://example.com/blog/post",
    "Origin": "https://example.com",
    "Sec-CH-UA": '"Chromium";v="142", "Google Chrome";v="142", "Not_A Brand";v="99"',
    "Sec-CH-UA-Mobile": "?0",
    "Sec-CH-UA-Platform": '"Windows"',
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
    "Content-Type": "text/plain;charset=UTF-8",
}
BOT_HEADERS = {"Host": "example.com", "Accept": "*/*", "Accept-Encoding": "gzip"}
IPS = ["203.0.113.7", "198.51.100.23", "3.5.140.2", "20.42.0.1", "2001:db8::5", "2600:1f18::1"]


def build_mix(calls: int, rng: random.Random) -> list[tuple[str, dict[str, str], str]]:
    bots = [ua for row in CRAWLER_USER_AGENTS_DATA for ua in row.get("instances", [])[:2]]
    path = Path(pulse.detection.__file__).with_name("ai_agents.json")
    samples = [row["sample"] for row in json.loads(path.read_text())["agents"]]
    mix = []
    for _ in range(calls):
        roll = rng.random()
        if roll < 0.7:
            mix.append((rng.choice(BROWSERS), BROWSER_HEADERS, rng.choice(IPS)))
        elif roll < 0.9:
            mix.append((rng.choice(bots), BOT_HEADERS, rng.choice(IPS)))
        else:
            mix.append((rng.choice(samples), BOT_HEADERS, rng.choice(IPS)))
    return mix


def measure(mix: list[tuple[str, dict[str, str], str]], before: Callable[[], None]) -> list[float]:
    timings = []
    for user_agent, headers, ip in mix:
        before()
        started = time.perf_counter_ns()
        classify(user_agent, headers, None, ip)
        timings.append((time.perf_counter_ns() - started) / 1000)
    return timings


def report(label: str, timings: list[float]) -> None:
    ordered = sorted(timings)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{label:<44} p50 {p50:7.1f} µs   p99 {p99:8.1f} µs   "
        f"mean {statistics.fmean(timings):7.1f} µs   ({len(timings):,} calls)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    mix = build_mix(args.calls, random.Random(args.seed))
    load()  # the ranges load once per process; keep that out of the timings
    clear_cache()
    report("mix, UA cache warming as UAs repeat", measure(mix, lambda: None))
    report("mix, UA cache cleared before every call", measure(mix, clear_cache))
    common = [(BROWSERS[0], BROWSER_HEADERS, "203.0.113.7")] * args.calls
    report("common case: known Chrome UA, full headers", measure(common, lambda: None))


if __name__ == "__main__":
    main()
