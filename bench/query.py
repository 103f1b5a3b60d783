"""Analytics query speed on PostgreSQL: reports over 30 days of events, next to count(*).

    .venv/bin/python bench/query.py [--events 1000000 --events 10000000] [--repeat 7]

Loopback only. For each --events size it creates a throwaway database (CREATE DATABASE
bench_query_<random> on BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/
test; dropped at the end), migrates it, and loads that many events for one site spread
over the 30 days before now through `store.write` (the drainer's bulk path, so visits
are built as in production). Traffic looks like a real site's: a daily and weekly
rhythm, sessions of 1-8 pageviews, 300 pages with a Zipf-like popularity, sources
(search, social, AI assistants, email, direct), 12 countries, three devices, custom
events with properties, and about 15% bots and AI agents with their own user agents.

Then VACUUM (ANALYZE), and each report `--repeat` times through pulse.analytics (the
functions the API calls), with p50/p95 in ms next to a plain count(*) of the site's
events: overview (30 days), top pages, sources, a filtered overview (country and
device), a day-by-day time series, two 3-step funnels, an 8-week retention (people
behind 40% of human sessions carry a user_id) and the agents list. It prints, never
asserts. Loading 10M
events takes a long while and a few GB of disk: with `--keep NAME` the database is
kept, and a later run with the same NAME reuses its events (their last timestamp
stands for "now") and only times the reports.

Closed days are rolled up (rollups.refresh_due, timed and printed) before the
reports are timed, and today up to a cut that leaves at least 10 minutes of today's
average traffic after it (the oldest cut the 5-minute job leaves is 10 minutes old):
its hits before the cut and its visits over 30 minutes before it. The hits after the
cut, and the visits of the visitors seen in the last 40 minutes or so, are read from
the raw tables, as in production.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pulse.detection import classify  # noqa: E402
from pulse.extensions import db  # noqa: E402
from pulse.ingest import store  # noqa: E402
from pulse.ingest.pipeline import client_columns  # noqa: E402

DAYS = 30
PAGES = [f"/docs/{n}" for n in range(250)] + [f"/blog/{n}" for n in range(49)] + ["/"]
SOURCES = [  # (referrer host, source, channel, weight)
    (None, None, "direct", 35),
    ("google.com", "Google", "search", 30),
    ("bing.com", "Bing", "search", 4),
    ("twitter.com", "Twitter", "social", 6),
    ("reddit.com", "Reddit", "social", 5),
    ("news.ycombinator.com", "Hacker News", "social", 4),
    ("chatgpt.com", "ChatGPT", "ai-assistant", 5),
    ("perplexity.ai", "Perplexity", "ai-assistant", 3),
    ("mail.google.com", "Gmail", "email", 3),
    ("github.com", "GitHub", "referral", 5),
]
COUNTRIES = [
    ("US", 30), ("GB", 10), ("DE", 9), ("FR", 7), ("IN", 8), ("BR", 5),
    ("JP", 5), ("CA", 5), ("NL", 4), ("ES", 4), ("AU", 3), ("SE", 3),
]  # fmt: skip
AGENTS = {
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/124.0.0.0 Safari/537.36",
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "GPTBot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko); compatible; GPTBot/1.2; "
    "+https://openai.com/gptbot",
    "ClaudeBot": "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; "
    "ClaudeBot/1.0; +claudebot@anthropic.com)",
    "Googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl": "curl/8.5.0",
}
KINDS = [("desktop", 50), ("mobile", 30), ("tablet", 5), ("GPTBot", 5), ("ClaudeBot", 4),
         ("Googlebot", 4), ("curl", 2)]  # fmt: skip
HOURLY = [2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 8, 8, 8, 7, 6, 6, 5, 5, 4, 3, 2]


def _fields(kind: str) -> dict[str, Any]:
    """The enrichment and verdict columns of one kind of client, computed once."""
    ua = AGENTS[kind]
    human = kind in ("desktop", "mobile", "tablet")
    headers = {"accept-language": "en-GB,en;q=0.9", "accept": "*/*"} if human else {}
    verdict = classify(ua, headers, None, "81.2.69.142")
    return client_columns(ua, verdict)


class Traffic:
    """Sessions of one site over DAYS days, day by day, each day's events in time order."""

    def __init__(self, site_id: int, events: int, end: datetime, seed: int = 7) -> None:
        self.site_id, self.events, self.end = site_id, events, end
        self.rnd = random.Random(seed)
        self.kinds = {kind: _fields(kind) for kind, _ in KINDS}
        weights = [1 / (n + 1) ** 0.9 for n in range(len(PAGES))]
        self.page_weights = weights

    def days(self):
        start = (self.end - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
        per_day = self.events / DAYS
        made = 0
        for day in range(DAYS):
            date = start + timedelta(days=day)
            weekend = date.weekday() >= 5
            target = int(per_day * (0.7 if weekend else 1.12))
            if day == DAYS - 1:
                target = self.events - made
            rows = self._day(date, max(0, target))
            made += len(rows)
            yield rows

    def _day(self, start: datetime, target: int) -> list[dict[str, Any]]:
        rnd = self.rnd
        rows: list[dict[str, Any]] = []
        while len(rows) < target:
            hour = rnd.choices(range(24), HOURLY)[0]
            began = start + timedelta(hours=hour, seconds=rnd.randrange(3600))
            if began >= self.end:
                continue
            kind = rnd.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
            host, source, channel, _ = rnd.choices(SOURCES, [s[3] for s in SOURCES])[0]
            country = rnd.choices([c for c, _ in COUNTRIES], [w for _, w in COUNTRIES])[0]
            visitor = rnd.getrandbits(62)
            fields = self.kinds[kind]
            pages = rnd.choices(PAGES, self.page_weights, k=rnd.choice([1, 1, 1, 2, 2, 3, 5, 8]))
            ts = began
            for n, path in enumerate(pages):
                rows.append(self._row(ts, "pageview", path, visitor, fields, country,
                                      host if n == 0 else None, source, channel))  # fmt: skip
                if fields["label"] == "human" and rnd.random() < 0.08:
                    rows.append(self._row(ts + timedelta(seconds=5), "signup", path, visitor,
                                          fields, country, None, source, channel,
                                          {"plan": rnd.choice(["free", "pro"])}))  # fmt: skip
                ts += timedelta(seconds=rnd.randrange(5, 240))
        rows.sort(key=lambda r: r["ts"])
        return rows[:target]

    def _row(self, ts, name, path, visitor, fields, country, host, source, channel, props=None):
        return {
            "site_id": self.site_id,
            "event_uid": uuid.uuid4().hex,
            "ts": ts,
            "name": name,
            "session_id": "",
            "visitor_id": visitor,
            # 40% of the people behind human sessions are signed in: retention follows them.
            "user_id": f"u{visitor % 50000}"
            if fields["label"] == "human" and visitor % 10 < 4
            else None,
            "hostname": "bench.example",
            "pathname": path,
            "referrer": f"https://{host}/" if host else None,
            "referrer_host": host,
            "source": source,
            "channel": channel,
            "utm_source": "newsletter" if channel == "email" else None,
            "utm_medium": "email" if channel == "email" else None,
            "utm_campaign": None,
            "utm_term": None,
            "utm_content": None,
            "country": country,
            **fields,
            "props": props or {},
            "engaged_ms": None,
            "scroll_depth": None,
            "behaviour": None,
        }


@dataclass(frozen=True)
class BenchSite:
    id: int
    timezone: str = "UTC"


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """p50 and p95 in ms of `repeat` calls, after one warm-up call."""
    call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return statistics.median(samples), p95


def _set_zone(site: BenchSite) -> None:
    """Give the site the time zone of the reports, as a user would: its days' parts
    are then rebuilt at its midnight by the refresh below."""
    from pulse.analytics import rollups
    from pulse.models import Site

    row = db.session.get(Site, site.id)
    if row.timezone != site.timezone:
        rollups.zone_changed(site.id)
        row.timezone = site.timezone
        db.session.commit()


def _stored(url: str) -> tuple[int, int, datetime] | None:
    """(site id, events, end) of a kept database loaded by an earlier run, if any."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT site_id, count(*), max(ts) FROM events GROUP BY site_id")
        found = row.fetchone()
    if found is None:
        return None
    return found[0], found[1], found[2] + timedelta(seconds=1)


def load(site_id: int, events: int, end: datetime, batch: int) -> tuple[int, float]:
    """Events written through store.write, and the seconds it took."""
    started = time.monotonic()
    loaded = 0
    for day_rows in Traffic(site_id, events, end).days():
        for n in range(0, len(day_rows), batch):
            loaded += store.write(day_rows[n : n + batch])
            db.session.commit()
        db.session.remove()
    return loaded, time.monotonic() - started


def _oldest_cut(url: str, site_id: int, end: datetime) -> tuple[datetime, int]:
    """Where to cut today for timing: the oldest cut the 5-minute job leaves is 10
    minutes old, so leave after it 10 minutes of today's average traffic (the loader's
    last minutes are thin: sessions that would run past "now" are cut short)."""
    midnight = end.replace(hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(url) as conn:
        today = conn.execute(
            "SELECT count(*) FROM events WHERE site_id = %s AND ts >= %s AND ts < %s",
            (site_id, midnight, end),
        ).fetchone()[0]
        minutes = max((end - midnight).total_seconds() / 60, 1.0)
        tail = int(today / minutes * 10)
        row = conn.execute(
            "SELECT ts FROM events WHERE site_id = %s AND ts >= %s AND ts < %s "
            "ORDER BY ts DESC OFFSET %s LIMIT 1",
            (site_id, midnight, end, tail),
        ).fetchone()
        cut = max(min(row[0] if row else midnight, end - timedelta(minutes=10)), midnight)
        after = conn.execute(
            "SELECT count(*) FROM events WHERE site_id = %s AND ts >= %s AND ts < %s",
            (site_id, cut, end),
        ).fetchone()[0]
    return cut, after


def run_size(
    server: str, events: int, repeat: int, batch: int, keep: str | None, timezone: str
) -> None:
    from bench.drain import make_site, throwaway_app
    from pulse.analytics import agents, breakdowns, funnel, reports, retention, rollups
    from pulse.analytics.query import parse_query

    with throwaway_app(server, "bench_query", keep=keep) as (app, name):
        gc.freeze()
        url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
        stored = _stored(url) if keep else None
        if stored is None:
            site = BenchSite(make_site("query"), timezone)
            end = datetime.now(UTC)
            loaded, load_seconds = load(site.id, events, end, batch)
            how = f"loaded in {load_seconds:.0f} s ({loaded / load_seconds:,.0f} events/s)"
        else:
            site_id, loaded, end = stored
            site = BenchSite(site_id, timezone)
            how = f"already in {name}, ending {end:%Y-%m-%d %H:%M} UTC"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) events, visits")
        _set_zone(site)
        started = time.monotonic()
        built = rollups.refresh_due(now=end, limit=100_000)
        build_seconds = time.monotonic() - started
        cut, tail_hits = _oldest_cut(url, site.id, end)
        started = time.monotonic()
        rollups.build_day(site.id, end.date(), cut=cut)
        db.session.commit()
        cut_seconds = time.monotonic() - started
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "VACUUM (ANALYZE) rollup_hits, rollup_visits, rollup_days, rollup_users, "
                "rollup_journeys, rollup_items"
            )
            visits = conn.execute("SELECT count(*) FROM visits").fetchone()[0]
            size = conn.execute("SELECT pg_size_pretty(pg_database_size(%s))", (name,))
            size_text = size.fetchone()[0]
        print(
            f"\n{loaded:,} events, {visits:,} visits {how}; database {size_text}; "
            f"reports in {site.timezone}",
            flush=True,
        )
        print(
            f"roll-ups of {built} days built in {build_seconds:.1f} s "
            f"({build_seconds / max(built, 1):.2f} s a day; today's counts as one); "
            f"today rolled up to {cut:%H:%M:%S} UTC in {cut_seconds:.1f} s; "
            f"the {tail_hits:,} hits after it, and the visits of the visitors seen from "
            f"30 minutes before it, are read raw",
            flush=True,
        )

        def count() -> int:
            return db.session.execute(
                db.text("SELECT count(*) FROM events WHERE site_id = :s"), {"s": site.id}
            ).scalar_one()

        def cases(now: datetime) -> list[tuple[str, Callable[[], Any], int | None]]:
            month = parse_query(site, {"period": "30d"}, now=now)
            filtered = parse_query(
                site, {"period": "30d", "country": "US", "device": "mobile"}, now=now
            )
            by_country = parse_query(site, {"period": "30d", "country": "US"}, now=now)
            bots = parse_query(site, {"period": "30d"}, now=now, classification=("agent", "bot"))
            broad = funnel.make_spec(["/docs/*", "/blog/*", "signup"], 24)
            narrow = funnel.make_spec(["/", "/docs/1", "signup"], 24)
            weeks, grain = retention.parse_retention(
                site, {"period": "week", "periods": "8"}, now=now
            )
            return [
                ("count(*) of the site's events", count, None),
                ("overview, 30 days", lambda: reports.overview(month), 150),
                ("top pages, 30 days", lambda: breakdowns.top_pages(month), 150),
                ("sources, 30 days", lambda: breakdowns.sources(month), 150),
                ("filtered overview (country, device)", lambda: reports.overview(filtered), 1500),
                ("overview filtered by country", lambda: reports.overview(by_country), None),
                ("timeseries by day, 30 days", lambda: reports.timeseries(month, "day"), None),
                (
                    "funnel, 3 broad steps (/docs/*, /blog/*)",
                    lambda: funnel.funnel(month, broad),
                    1500,
                ),
                (
                    "funnel, 3 steps (/, /docs/1, signup)",
                    lambda: funnel.funnel(month, narrow),
                    1500,
                ),
                ("retention, 8 weeks", lambda: retention.retention(weeks, grain), 1500),
                ("agents list, 30 days", lambda: agents.agents(bots), None),
            ]

        def time_cases(now: datetime) -> None:
            print(f"{'report':<44} {'p50 ms':>9} {'p95 ms':>9}  target p50")
            for label, call, target in cases(now):
                p50, p95 = timed(call, repeat)
                db.session.remove()
                goal = f"< {target} ms" if target else ""
                print(f"{label:<44} {p50:>9.1f} {p95:>9.1f}  {goal}", flush=True)

        time_cases(end)
        # The current day's part grows until midnight: time the same reports as if
        # "now" were 23:59 of yesterday, with yesterday cut as the job would, then
        # give it back its whole-day roll-up.
        late = end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(minutes=1)
        cut, tail_hits = _oldest_cut(url, site.id, late)
        rollups.build_day(site.id, late.date(), cut=cut)
        db.session.commit()
        print(
            f"\nas if now were {late:%Y-%m-%d %H:%M} UTC: that day rolled up to "
            f"{cut:%H:%M:%S}, the {tail_hits:,} hits after it read raw",
            flush=True,
        )
        try:
            time_cases(late)
        finally:
            rollups.build_day(site.id, late.date())
            db.session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--events", type=int, action="append", help="events to load (repeatable; default 1M)"
    )
    parser.add_argument("--repeat", type=int, default=7, help="timed calls per report")
    parser.add_argument("--batch", type=int, default=5000, help="events per store.write")
    parser.add_argument(
        "--keep",
        metavar="DATABASE",
        help="load into this database once and keep it; later runs reuse its events "
        "(one --events size only)",
    )
    parser.add_argument(
        "--timezone",
        default="UTC",
        help="the site's time zone (its days, weeks and ranges); a kept database's "
        "roll-ups are rebuilt when it changes",
    )
    args = parser.parse_args()
    sizes = args.events or [1_000_000]
    if args.keep and len(sizes) > 1:
        parser.error("--keep takes one --events size")
    server = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    print(f"PostgreSQL {server}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    for events in sizes:
        size = max(1000, min(events, 20_000_000))
        run_size(server, size, max(1, args.repeat), args.batch, args.keep, args.timezone)


if __name__ == "__main__":
    main()
