"""API throughput and latency: gunicorn (2 sync workers) on 127.0.0.1, three endpoints.

    .venv/bin/python bench/api.py [--requests 2000] [--concurrency 8] [--database-url URL]

Starts gunicorn on a free loopback port against a throwaway SQLite database (or the
--database-url / BENCH_DATABASE_URL you give: it is migrated and gets rows written to
it), sets up an account, a team, a site and an API key over HTTP, then sends a bounded
number of requests per endpoint from a pool of threads and prints requests/s and
p50/p99 latency. gunicorn is stopped by its PID at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def console_script(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


@dataclass
class Client:
    """A tiny JSON client over one keep-alive-capable http.client connection."""

    port: int
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.conn = http.client.HTTPConnection(HOST, self.port, timeout=10)

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
        payload = None if body is None else json.dumps(body).encode()
        headers = dict(self.headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, payload, headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # reconnects on the next request
            raise
        for name, value in response.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.headers["Cookie"] = value.split(";", 1)[0]
        return response.status, (json.loads(data) if data.strip() else {})


@dataclass
class Result:
    name: str
    latencies: list[float]
    statuses: Counter
    errors: int
    elapsed: float

    def row(self) -> str:
        done = len(self.latencies)
        ok = sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        rate = done / self.elapsed if self.elapsed else 0.0
        cuts = statistics.quantiles(self.latencies, n=100) if done >= 2 else [0.0] * 99
        other = {s: n for s, n in self.statuses.items() if not 200 <= s < 300}
        note = f"  non-2xx {other}" if other else ""
        note += f"  transport errors {self.errors}" if self.errors else ""
        return (
            f"{self.name:<38} {done:>6} {ok:>6} {rate:>9.1f} "
            f"{cuts[49] * 1000:>8.2f} {cuts[98] * 1000:>8.2f}{note}"
        )


def hammer(
    name: str,
    port: int,
    headers: dict[str, str],
    request: Callable[[int], tuple[str, str, object | None]],
    total: int,
    concurrency: int,
    time_limit: float,
) -> Result:
    """Send `total` requests from `concurrency` threads (stopping early at `time_limit`)."""
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    statuses: Counter = Counter()
    errors = 0
    deadline = time.monotonic() + time_limit

    def work() -> None:
        nonlocal issued, errors
        client = Client(port, dict(headers))
        while True:
            with lock:
                if issued >= total or time.monotonic() > deadline:
                    break
                index = issued
                issued += 1
            method, path, body = request(index)
            start = time.perf_counter()
            try:
                status, _ = client.call(method, path, body)
            except (OSError, http.client.HTTPException, ValueError):
                with lock:
                    errors += 1
                continue
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                statuses[status] += 1
        client.conn.close()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(time_limit + 30)
    return Result(name, latencies, statuses, errors, time.perf_counter() - started)


def wait_healthy(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            status, _ = Client(port).call("GET", "/api/health")
            if status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    sys.exit(f"gunicorn did not answer within {timeout}s:\n{log.read_text()[-3000:]}")


def expect(status: int, wanted: int, body: dict) -> None:
    if status != wanted:
        sys.exit(f"set-up request answered {status}, not {wanted}: {body}")


def set_up(port: int) -> tuple[str, str]:
    """An account, an enterprise-tier team (so rate limits stay out of the way), a site, a key."""
    browser = Client(port)
    email = f"bench-{secrets.token_hex(4)}@example.com"
    status, body = browser.call(
        "POST", "/api/v1/auth/signup", {"email": email, "password": secrets.token_urlsafe(16)}
    )
    expect(status, 201, body)
    status, body = browser.call(
        "POST", "/api/v1/teams", {"name": f"Bench {email[6:14]}", "tier": "enterprise"}
    )
    expect(status, 201, body)
    slug = body["data"]["slug"]
    status, body = browser.call(
        "POST", f"/api/v1/teams/{slug}/sites", {"name": "bench.example", "domain": "bench.example"}
    )
    expect(status, 201, body)
    status, body = browser.call(
        "POST",
        f"/api/v1/teams/{slug}/api-keys",
        {"name": "bench", "scopes": ["*"], "rate_limit_tier": "enterprise"},
    )
    expect(status, 201, body)
    return slug, body["data"]["key"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint (max 20000)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (max 64)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--time-limit", type=float, default=120.0, help="seconds per endpoint")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL"),
        help="a throwaway database (default: SQLite in a temporary folder)",
    )
    args = parser.parse_args()
    total = max(1, min(args.requests, 20000))
    concurrency = max(1, min(args.concurrency, 64))

    tmp = Path(tempfile.mkdtemp(prefix="pulse-bench-"))
    port = free_port()
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BASE_URL"}
        and not k.startswith(("PULSE_", "SMTP_"))
    }
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_urlsafe(32),
        BASE_URL=f"http://{HOST}:{port}",
        PULSE_ENV="development",  # plain-http session cookie for the set-up requests
    )
    log = tmp / "gunicorn.log"
    proc: subprocess.Popen | None = None
    try:
        subprocess.run(
            [console_script("pulse"), "db", "upgrade"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "wsgi:app"]
                + ["-b", f"{HOST}:{port}", "-w", str(args.workers), "--log-level", "warning"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_healthy(port, proc, log)
        slug, key = set_up(port)
        auth = {"Authorization": f"Bearer {key}"}
        run_id = secrets.token_hex(3)
        cases = [
            ("GET /api/health", {}, lambda i: ("GET", "/api/health", None)),
            ("GET /api/v1/projects (API key)", auth, lambda i: ("GET", "/api/v1/projects", None)),
            (
                "POST /api/v1/teams/<slug>/sites",
                auth,
                lambda i: (
                    "POST",
                    f"/api/v1/teams/{slug}/sites",
                    {"name": f"s{i}-{run_id}", "domain": f"s{i}-{run_id}.bench.example"},
                ),
            ),
        ]
        database = database_url.split(":", 1)[0]
        print(
            f"gunicorn -w {args.workers} on {HOST}:{port}, database {database}, "
            f"{total} requests per endpoint, concurrency {concurrency}, "
            f"python {sys.version.split()[0]}"
        )
        print(f"{'endpoint':<38} {'sent':>6} {'2xx':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for name, headers, request in cases:
            result = hammer(name, port, headers, request, total, concurrency, args.time_limit)
            print(result.row(), flush=True)
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
