"""Dashboard speed on PostgreSQL: the overview page and each of its partials at 1M events.

    .venv/bin/python bench/dashboard.py [--events 1000000] [--repeat 7] [--period 30d]

Loopback only, nothing over the network: requests go through Flask's test client, so
the figures are the server's time for a request (routing, session, queries,
templates), without a socket. It creates a throwaway database on BENCH_POSTGRES_URL
(default postgresql://postgres@127.0.0.1:5432/test; dropped at the end) with
bench/drain.py's `throwaway_app` and `make_site`, loads `--events` events over 30
days with bench/query.py's `Traffic` through `store.write`, builds the daily roll-ups
of the closed days (`rollups.refresh_due`, what the periodic job does), runs VACUUM
(ANALYZE), signs the site's owner in, and times, `--repeat` times each after a warm-up:

- the overview page itself (layout, filter bar, empty panels that load themselves);
- each partial the page then fetches: the summary (KPI cards with the previous
  period, and the chart), pages, sources, countries, devices, humans/agents/bots;
- the realtime and agents pages and their partials.

It prints p50/p95 in ms per request and the sum of the partials' p50 (what one
browser waits for when its requests are served one after another; htmx sends
them at once). It prints, never asserts.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.drain import make_site, throwaway_app  # noqa: E402
from bench.query import Traffic, timed  # noqa: E402
from pulse.analytics import rollups  # noqa: E402
from pulse.extensions import db  # noqa: E402
from pulse.ingest import store  # noqa: E402
from pulse.models import Site  # noqa: E402

TARGET_MS = 300
PANELS = ("pages", "sources", "locations", "devices", "traffic")


def load(site_id: int, events: int, batch: int) -> float:
    """Write `events` events for the site; the seconds it took."""
    started = time.monotonic()
    for day_rows in Traffic(site_id, events, datetime.now(UTC)).days():
        for n in range(0, len(day_rows), batch):
            store.write(day_rows[n : n + batch])
            db.session.commit()
        db.session.remove()
    return time.monotonic() - started


def run(server: str, events: int, repeat: int, batch: int, period: str) -> None:
    with throwaway_app(server, "bench_dashboard") as (app, name):
        gc.freeze()
        site_id = make_site("dashboard")
        seconds = load(site_id, events, batch)
        started = time.monotonic()
        days = rollups.refresh_due(limit=100_000)
        db.session.remove()
        rolled = time.monotonic() - started
        url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
            stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        loaded = f"{stored:,} events loaded in {seconds:.0f} s"
        print(f"\n{loaded}; {days} days rolled up in {rolled:.0f} s", flush=True)

        site = db.session.get(Site, site_id)
        base = f"/t/{site.team.slug}/sites/{site_id}"
        db.session.remove()
        client = app.test_client()
        login = client.post(
            "/api/v1/auth/login",
            json={"email": "dashboard@bench.example", "password": "correct horse battery staple"},
        )
        assert login.status_code == 200, login.get_json()
        args = f"period={period}"
        htmx = {"HX-Request": "true"}
        cases = [
            ("overview page", f"{base}/overview?{args}", None),
            ("  summary: KPIs + chart", f"{base}/overview/summary?{args}", htmx),
            *[
                (f"  panel: {panel}", f"{base}/overview/panels/{panel}?{args}", htmx)
                for panel in PANELS
            ],
            ("realtime page", f"{base}/realtime", None),
            ("  realtime now", f"{base}/realtime/now", htmx),
            ("agents page", f"{base}/agents?{args}", None),
            ("  agents list", f"{base}/agents/list?{args}", htmx),
        ]

        def request(path: str, headers: dict[str, str] | None) -> None:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.status_code)
            db.session.remove()

        print(f"{'request (' + period + ')':<40} {'p50 ms':>9} {'p95 ms':>9}", flush=True)
        partials = 0.0
        for label, path, headers in cases:
            p50, p95 = timed(lambda p=path, h=headers: request(p, h), repeat)
            note = f"  target < {TARGET_MS} ms" if label == "overview page" else ""
            print(f"{label:<40} {p50:>9.1f} {p95:>9.1f}{note}", flush=True)
            if label.startswith("  ") and "/overview/" in path:
                partials += p50
        print(f"{'overview partials, sum of p50':<40} {partials:>9.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to load")
    parser.add_argument("--repeat", type=int, default=7, help="timed requests per case")
    parser.add_argument("--batch", type=int, default=5000, help="events per store.write")
    parser.add_argument("--period", default="30d", help="the range asked (default 30d)")
    args = parser.parse_args()
    server = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    print(f"PostgreSQL {server}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    events = max(1000, min(args.events, 20_000_000))
    run(server, events, max(1, args.repeat), args.batch, args.period)


if __name__ == "__main__":
    main()
