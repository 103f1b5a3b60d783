"""Latency of each enrichment function of the write path over 10,000 realistic inputs.

    .venv/bin/python bench/enrich.py [--calls 10000] [--seed 7]

Per function: µs per call at p50 and p99 (and the mean), timed call by call with
perf_counter_ns. Inputs are drawn with repetition, as production sees them (the same
browsers, the same few referrers); the cached functions are also timed on inputs that
never repeat (every call a cache miss). `salt_for` runs on an in-memory SQLite app:
the first call of a day is a read plus an insert, every later one a dictionary lookup.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from pulse.ingest import enrich, referrers
from pulse.ingest.enrich import (
    classify_referrer,
    country_for,
    engagement_score,
    parse_user_agent,
    split_url,
    visitor_id,
)

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/26.2 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/26.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:144.0) Gecko/20100101 Firefox/144.0",
    "Mozilla/5.0 (Android 16; Mobile; rv:144.0) Gecko/144.0 Firefox/144.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36",
]
REFERRERS = [
    "https://www.google.com/", "https://www.google.co.uk/", "https://www.google.de/",
    "https://www.bing.com/search?q=pulse", "https://duckduckgo.com/", "https://t.co/xyz",
    "https://l.facebook.com/l.php?u=x", "https://news.ycombinator.com/item?id=1",
    "https://www.reddit.com/r/selfhosted/comments/1", "https://chatgpt.com/",
    "https://www.perplexity.ai/search/x", "https://mail.google.com/mail/u/0/",
    "android-app://com.google.android.gm/", "https://github.com/org/repo",
    "https://example.com/pricing", "https://some-blog.dev/posts/analytics",
]  # fmt: skip
PATHS = ["/", "/pricing", "/blog/self-hosted-analytics", "/docs/install/", "/#/app/settings"]
UTMS = [
    "", "", "", "?utm_source=newsletter&utm_medium=email&utm_campaign=launch",
    "?utm_source=google&utm_medium=cpc&utm_term=web+analytics", "?ref=producthunt",
    "?utm_source=chatgpt.com",
]  # fmt: skip


def _ip(rng: random.Random) -> str:
    """Mostly public IPv4, some IPv6, a few private addresses."""
    roll = rng.random()
    if roll < 0.85:
        return ".".join(str(rng.randint(1, 223 if n == 0 else 254)) for n in range(4))
    if roll < 0.97:
        return f"2a0{rng.randint(0, 9)}:{rng.randint(0, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
    return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def inputs(calls: int, rng: random.Random) -> dict[str, list[tuple[Any, ...]]]:
    """Argument tuples for every function, drawn with production-like repetition."""
    bots = [ua for row in CRAWLER_USER_AGENTS_DATA for ua in row.get("instances", [])[:2]]
    uas = [rng.choice(BROWSERS) if rng.random() < 0.8 else rng.choice(bots) for _ in range(calls)]
    urls = [
        f"https://{rng.choice(['example.com', 'www.example.com'])}{rng.choice(PATHS)}"
        f"{rng.choice(UTMS)}"
        for _ in range(calls)
    ]
    refs = [rng.choice(REFERRERS) if rng.random() < 0.6 else None for _ in range(calls)]
    salt = rng.randbytes(32)
    return {
        "parse_user_agent": [(ua,) for ua in uas],
        "parse_user_agent (every UA new)": [(f"{ua} build/{i}",) for i, ua in enumerate(uas)],
        "country_for": [(_ip(rng),) for _ in range(calls)],
        "split_url": [(url,) for url in urls],
        "classify_referrer": [
            (ref, "example.com", split_url(url)[2]) for ref, url in zip(refs, urls, strict=True)
        ],
        "classify_referrer (every host new)": [
            (f"https://site{i}.example.net/post", "example.com", {}) for i in range(calls)
        ],
        "visitor_id": [(salt, rng.randint(1, 500), _ip(rng), ua) for ua in uas],
        "engagement_score": [
            (
                rng.randint(1, 12),
                rng.randint(0, 900),
                rng.choice([None, rng.randint(0, 600_000)]),
                rng.choice([None, rng.randint(0, 100)]),
                rng.randint(0, 6),
            )
            for _ in range(calls)
        ],  # fmt: skip
    }


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "parse_user_agent": parse_user_agent,
    "parse_user_agent (every UA new)": parse_user_agent,
    "country_for": country_for,
    "split_url": split_url,
    "classify_referrer": classify_referrer,
    "classify_referrer (every host new)": classify_referrer,
    "visitor_id": visitor_id,
    "engagement_score": engagement_score,
}


def measure(function: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[float]:
    """µs per call, one timing per call."""
    timings = []
    for args in calls:
        started = time.perf_counter_ns()
        function(*args)
        timings.append((time.perf_counter_ns() - started) / 1000)
    return timings


def report(label: str, timings: list[float]) -> None:
    """One line: p50, p99 and mean in µs."""
    ordered = sorted(timings)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{label:<36} p50 {p50:8.2f} µs   p99 {p99:8.2f} µs   "
        f"mean {statistics.fmean(timings):8.2f} µs   ({len(timings):,} calls)"
    )


def bench_salts(calls: int) -> None:
    """salt_for on an in-memory SQLite app: the first call of a day, then the cached path."""
    from pulse import create_app
    from pulse.extensions import db
    from pulse.ingest.salts import salt_for

    app = create_app(
        {
            "PULSE_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "SECRET_KEY": "bench",
            "REDIS_URL": None,
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    with app.app_context():
        db.create_all()
        first = [measure(salt_for, [(date(2026, 1, 1 + n),)])[0] for n in range(20)]
        report("salt_for (first call of a day)", first)
        report("salt_for (cached)", measure(salt_for, [(date(2026, 1, 20),)] * calls))


def main() -> None:
    """Print one line per function."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data = inputs(args.calls, random.Random(args.seed))
    parse_user_agent(BROWSERS[0])  # load ua-parser's rules and the IP database outside the timings
    country_for("8.8.8.8")
    enrich._parse_user_agent.cache_clear()
    referrers._lookup.cache_clear()
    for label, function in FUNCTIONS.items():
        report(label, measure(function, data[label]))
    bench_salts(args.calls)


if __name__ == "__main__":
    main()
