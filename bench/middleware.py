"""Per-request overhead of PulseMiddleware on a trivial WSGI app, Pulse on loopback.

    .venv/bin/python bench/middleware.py [--requests 20000] [--rate 2000]

Starts Pulse (gunicorn, 2 sync workers, a throwaway SQLite database; the set-up of
bench/api.py, plus 127.0.0.1 in INGEST_IP_WHITELIST), creates a site and an
events:write key over HTTP, then calls a trivial WSGI app in-process, bare and
wrapped, alternating in blocks, at `--rate` requests per second (a trivial app at
full speed is not a load any site has), and prints the p50/p99 time of one call in
microseconds for each and their difference.
The middleware's sender thread runs meanwhile, as in production, so the figures
include its share of the GIL. A second run points the middleware at a closed port
with a tiny queue: the cost of a request when Pulse is down and hits are dropped.
"""

from __future__ import annotations

import argparse
import importlib
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
api = importlib.import_module("api")  # bench/api.py: gunicorn start-up and account set-up
wsgi = importlib.import_module("pulse.integrations.wsgi")

ENVIRON = {
    "REQUEST_METHOD": "GET",
    "SCRIPT_NAME": "",
    "PATH_INFO": "/docs/getting-started",
    "QUERY_STRING": "utm_source=newsletter",
    "SERVER_NAME": "bench.example",
    "SERVER_PORT": "443",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "81.2.69.142",
    "REMOTE_PORT": "51234",
    "HTTP_HOST": "bench.example",
    "HTTP_USER_AGENT": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/142.0.0.0 Safari/537.36"
    ),
    "HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8",
    "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9",
    "HTTP_ACCEPT_ENCODING": "gzip, deflate, br",
    "HTTP_REFERER": "https://www.google.com/",
    "wsgi.url_scheme": "https",
    "wsgi.version": (1, 0),
    "wsgi.multithread": False,
    "wsgi.multiprocess": True,
    "wsgi.run_once": False,
}


def hello(environ, start_response):
    """The trivial app: the middleware's cost is all there is to see."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def start_response(status, headers, exc_info=None):
    return None


def measure(app, total: int, rate: float) -> list[float]:
    """Seconds per call (call, iterate, close), paced at `rate` calls per second."""
    times: list[float] = []
    gap = 1.0 / rate
    due = time.perf_counter()
    for _ in range(total):
        due += gap
        while time.perf_counter() < due:
            pass  # sleep() is too coarse at these rates
        environ = dict(ENVIRON)
        started = time.perf_counter()
        body = app(environ, start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
        times.append(time.perf_counter() - started)
    return times


def compare(wrapped, total: int, rate: float, block: int = 500) -> tuple[list, list]:
    """Bare and wrapped calls, alternating in blocks so drift hits both alike."""
    bare: list[float] = []
    mine: list[float] = []
    for _ in range(max(1, total // block)):
        bare += measure(hello, block, rate)
        mine += measure(wrapped, block, rate)
    return bare, mine


def cuts(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100)
    return q[49] * 1e6, q[98] * 1e6


def row(name: str, bare: list[float], wrapped: list[float], stats) -> str:
    b50, b99 = cuts(bare)
    w50, w99 = cuts(wrapped)
    return (
        f"{name:<28} {b50:>7.1f} {b99:>7.1f} {w50:>7.1f} {w99:>7.1f} "
        f"{w50 - b50:>7.1f} {w99 - b99:>7.1f}   sent {stats.sent} dropped {stats.dropped} "
        f"failed {stats.failed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000, help="per variant (max 200000)")
    parser.add_argument("--rate", type=float, default=2000.0, help="calls per second")
    args = parser.parse_args()
    total = max(1000, min(args.requests, 200_000))
    rate = max(10.0, args.rate)

    tmp = Path(tempfile.mkdtemp(prefix="pulse-bench-mw-"))
    port = api.free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL"}
        and not k.startswith(("PULSE_", "SMTP_"))
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        SECRET_KEY=secrets.token_urlsafe(32),
        BASE_URL=f"http://{api.HOST}:{port}",
        PULSE_ENV="development",
        # One app server sends every batch from one IP: Pulse's per-IP limit for
        # /track/batch (30 a minute) would shape the figures, so loopback is exempt.
        INGEST_IP_WHITELIST="127.0.0.1/32",
    )
    log = tmp / "gunicorn.log"
    proc: subprocess.Popen | None = None
    try:
        subprocess.run(
            [api.console_script("pulse"), "db", "upgrade"],
            cwd=api.ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "wsgi:app", "-b", f"{api.HOST}:{port}"]
                + ["-w", "2", "--log-level", "warning"],
                cwd=api.ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        api.wait_healthy(port, proc, log)
        slug, key = api.set_up(port)
        client = api.Client(port, {"Authorization": f"Bearer {key}"})
        status, body = client.call(
            "POST",
            f"/api/v1/teams/{slug}/sites",
            {"name": "middleware bench", "domain": "mw.bench.example"},
        )
        api.expect(status, 201, body)
        site = body["data"]["site_key"]

        print(
            f"trivial WSGI app, {total} calls per variant at {rate:.0f}/s, "
            f"python {sys.version.split()[0]}; times in µs per call"
        )
        print(
            f"{'':<28} {'bare':>7} {'':>7} {'wrapped':>7} {'':>7} {'overhead':>7}\n"
            f"{'case':<28} {'p50':>7} {'p99':>7} {'p50':>7} {'p99':>7} {'p50':>7} {'p99':>7}"
        )
        up = wsgi.PulseMiddleware(
            hello, endpoint=f"http://{api.HOST}:{port}", api_key=key, site=site
        )
        bare, wrapped = compare(up, total, rate)
        up.flush(timeout=120)
        print(row("Pulse up (loopback)", bare, wrapped, up.stats), flush=True)
        up.close()

        down = wsgi.PulseMiddleware(
            hello,
            endpoint=f"http://{api.HOST}:{api.free_port()}",
            api_key=key,
            site=site,
            max_queue=100,
            retries=1,
        )
        bare, wrapped = compare(down, total // 2, rate)
        down.close(timeout=30)
        print(row("Pulse down (queue full)", bare, wrapped, down.stats), flush=True)
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
