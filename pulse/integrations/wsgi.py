"""`PulseMiddleware`: server-side pageviews from any Python WSGI app, without slowing it.

    app.wsgi_app = PulseMiddleware(
        app.wsgi_app, endpoint="https://pulse.example.com", api_key="sk_live_...", site="ps_..."
    )

AI crawlers and most bots never run the JavaScript tracker; only the app sees them.
Per request the middleware reads a few environ keys once the status is known and
does one `put_nowait` on a bounded queue: when the queue is full the hit is dropped
and counted, the app never waits for Pulse. One daemon thread batches the hits and
POSTs them to `/api/v1/track/batch` with an events:write key, standard library only
(no new dependency): 5xx, 408 and connection errors are retried with backoff, 429
waits out Retry-After, other 4xx are given up. Event ids are fixed before the first
attempt, so a retried batch is not counted twice.

What is recorded follows the log import's rule: GET and HEAD, every status (in
props), no static assets (`exclude` prefixes and `pulse.integrations.ASSET_EXTENSIONS`).
The response iterable is returned untouched, so streaming and `wsgi.file_wrapper`
keep working. With forking servers (gunicorn --preload) each process starts its own
sender thread on its first request.
"""

from __future__ import annotations

import atexit
import http.client
import ipaddress
import json
import logging
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

from pulse.integrations import is_asset

log = logging.getLogger(__name__)

DEFAULT_EXCLUDE = ("/static/", "/assets/", "/media/", "/favicon.ico", "/apple-touch-icon")
MAX_EVENTS = 100  # Pulse's batch limit per request
RETRYABLE = frozenset({408, 429})
POLL = 0.1  # seconds between looks at the queue
WARN_EVERY = 60.0  # seconds between warnings about undelivered events
SAFE_PATH = "/:@!$&'()*+,;=~"  # kept as they are when the path is percent-encoded again
StartResponse = Callable[..., Any]
# (time, method, scheme, host, path, query, status, REMOTE_ADDR, X-Forwarded-For, UA, referrer)
Hit = tuple[float, str, str, str, str, str, int, str, str, str, str]


@dataclass
class Stats:
    """Counters since start: read them to alert on `dropped` or `failed`."""

    sent: int = 0  # accepted by Pulse
    dropped: int = 0  # the queue was full: the app was not kept waiting
    failed: int = 0  # refused by Pulse (4xx, invalid) or undeliverable after the retries
    retries: int = 0  # attempts repeated after 5xx, 408, 429 or a connection error


class _Marker:
    """Queued by flush()/close(): set once everything queued before it was handled."""

    __slots__ = ("done", "stop")

    def __init__(self, stop: bool = False) -> None:
        self.done = threading.Event()
        self.stop = stop


def retry_delay(attempt: int, retry_after: str | None, base: float, cap: float) -> float:
    """Seconds before the next attempt: Retry-After when given, else jittered backoff."""
    if retry_after:
        try:
            seconds = float(retry_after)
        except ValueError:
            try:
                seconds = parsedate_to_datetime(retry_after).timestamp() - time.time()
            except (TypeError, ValueError):
                seconds = base
        return min(max(seconds, 0.0), cap)
    return min(cap, base * 2**attempt) * random.uniform(0.5, 1.0)


def _ip(value: str) -> str | None:
    """A bare IP address from `1.2.3.4`, `1.2.3.4:80`, `[::1]:80` or `::1`; else None."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


class PulseMiddleware:
    """Wraps a WSGI app; sends one pageview per page request to Pulse in the background.

    `site` is the site key (or id) and `api_key` a key with events:write. Set
    `trust_forwarded` only behind a proxy that sets X-Forwarded-For (its first hop
    is then the client). `methods=None` records every method; `retries`, `backoff`
    and `max_delay` (the longest wait, Retry-After included) shape the retries.
    """

    def __init__(
        self,
        app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        *,
        endpoint: str,
        api_key: str,
        site: str,
        batch_size: int = 100,
        flush_interval: float = 2.0,
        max_queue: int = 10_000,
        timeout: float = 5.0,
        exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
        trust_forwarded: bool = False,
        methods: Collection[str] | None = ("GET", "HEAD"),
        retries: int = 5,
        backoff: float = 0.5,
        max_delay: float = 60.0,
    ) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, not {endpoint!r}")
        self.app = app
        self.site = site
        self.batch_size = max(1, batch_size)
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.timeout = timeout
        self.exclude = tuple(exclude)
        self.trust_forwarded = trust_forwarded
        self.methods = frozenset(methods) if methods else None
        self.retries, self.backoff, self.max_delay = retries, backoff, max_delay
        self.stats = Stats()
        self._https = parts.scheme == "https"
        self._address = (parts.hostname, parts.port)
        self._path = parts.path.rstrip("/") + "/api/v1/track/batch"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "User-Agent": "pulse-wsgi-middleware/1",
        }
        self._conn: http.client.HTTPConnection | None = None
        self._queue: queue.Queue[Hit | _Marker] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._wake = threading.Event()
        self._closed = False
        self._unreported, self._warned_at = 0, -WARN_EVERY
        atexit.register(self.close)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._forked)

    # The request thread: a few look-ups and a put_nowait -------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO") or "/"
        if (
            self._closed
            or (self.methods is not None and method not in self.methods)
            or path.startswith(self.exclude)
            or is_asset(path)
        ):
            return self.app(environ, start_response)
        started = time.time()
        status: list[str] = []
        returned = False

        def capture(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not returned:
                status[:] = [line]  # a later call (an error page replacing the first) wins
            elif not status:  # an app that starts its response while being iterated
                status.append(line)
                self._record(environ, started, line)
            return start_response(line, headers, exc_info)

        try:
            body = self.app(environ, capture)
        except BaseException:
            self._record(environ, started, "500")
            raise
        returned = True
        if status:
            self._record(environ, started, status[0])
        return body

    def _record(self, environ: dict[str, Any], started: float, status: str) -> None:
        if self._thread is None:
            self._start()
        hit: Hit = (
            started,
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("wsgi.url_scheme", "http"),
            environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
            environ.get("SCRIPT_NAME", "") + (environ.get("PATH_INFO") or "/"),
            environ.get("QUERY_STRING", ""),
            int(status[:3]) if status[:3].isdigit() else 0,
            environ.get("REMOTE_ADDR", ""),
            environ.get("HTTP_X_FORWARDED_FOR", "") if self.trust_forwarded else "",
            environ.get("HTTP_USER_AGENT", ""),
            environ.get("HTTP_REFERER", ""),
        )
        try:
            self._queue.put_nowait(hit)
        except queue.Full:
            with self._lock:
                self.stats.dropped += 1

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="pulse-middleware", daemon=True
                )
                self._thread.start()

    def _forked(self) -> None:
        """In a forked child: the parent's thread and queue are not ours."""
        self._thread, self._conn, self._lock = None, None, threading.Lock()
        self._queue = queue.Queue(maxsize=self.max_queue)

    # Flushing ------------------------------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Send everything queued so far; True when it was all handled within `timeout`."""
        return self._mark(_Marker(), timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Send what is queued and stop the thread; later requests are not recorded."""
        if self._closed:
            return True
        self._closed = True
        self._closing.set()
        atexit.unregister(self.close)
        thread = self._thread
        done = self._mark(_Marker(stop=True), timeout)
        if thread is not None:
            thread.join(timeout if done else 0)
        return done

    def _mark(self, marker: _Marker, timeout: float) -> bool:
        if self._thread is None:
            return True  # nothing was ever recorded in this process
        deadline = time.monotonic() + timeout
        self._wake.set()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        self._wake.set()
        return marker.done.wait(max(0.0, deadline - time.monotonic()))

    # The sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        """Drain the queue a few times a second; send full batches, and partial ones by age.

        Polling rather than a blocking get() means a request's put never wakes this
        thread, which would cost the request a GIL hand-over; markers are answered in
        queue order, after everything queued before them was sent.
        """
        batch: list[Hit] = []
        deadline = 0.0
        poll = min(POLL, self.flush_interval)
        while True:
            self._wake.wait(poll)
            self._wake.clear()
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Marker):
                    self._send(batch)
                    batch = []
                    item.done.set()
                    if item.stop:
                        return
                    continue
                if not batch:
                    deadline = time.monotonic() + self.flush_interval
                batch.append(item)
                if len(batch) >= self.batch_size:
                    self._send(batch)
                    batch = []
            if batch and time.monotonic() >= deadline:
                self._send(batch)
                batch = []

    def _send(self, hits: list[Hit]) -> None:
        try:
            events = [self._event(hit) for hit in hits]
            for start in range(0, len(events), MAX_EVENTS):
                self._deliver(events[start : start + MAX_EVENTS])
        except Exception:  # the thread must outlive any surprise; count and go on
            log.exception("Pulse middleware: could not send %d events", len(hits))
            self.stats.failed += len(hits)

    def _event(self, hit: Hit) -> dict[str, Any]:
        """The tracking item, built here rather than in the request thread."""
        started, method, scheme, host, path, query, status, remote, forwarded = hit[:9]
        agent, referrer = hit[9], hit[10]
        url = f"{scheme}://{host}{quote(path.encode('latin-1', 'replace'), safe=SAFE_PATH)}"
        if query:
            url += "?" + query
        event: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "name": "pageview",
            "url": url[:2048],
            "ts": int(started * 1000),
            "props": {"status": status, "method": method},
        }
        ip = (_ip(forwarded.split(",", 1)[0]) if forwarded else None) or _ip(remote)
        if ip:
            event["ip"] = ip
        if agent:  # WSGI gives headers as latin-1 text: read the bytes as UTF-8 again
            event["user_agent"] = agent.encode("latin-1", "replace").decode("utf-8", "replace")
            event["user_agent"] = event["user_agent"][:1024]
        if referrer:
            event["referrer"] = referrer[:2048]
        return event

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        body = json.dumps({"site": self.site, "events": events}, separators=(",", ":")).encode()
        for attempt in range(self.retries + 1):
            try:
                status, retry_after, data = self._post(body)
            except (OSError, http.client.HTTPException) as exc:
                status, retry_after, data = 0, None, str(exc).encode()
            if 200 <= status < 300:
                refused = _refused(data)
                self.stats.sent += len(events) - refused
                self.stats.failed += refused
                return
            if status and status < 500 and status not in RETRYABLE:
                break  # the key, the site or the payload is wrong: retrying will not help
            if attempt == self.retries:
                break
            self.stats.retries += 1
            after = retry_after if status == 429 else None
            delay = retry_delay(attempt, after, self.backoff, self.max_delay)
            self._closing.wait(delay)  # closing: no more waiting, last attempts now
        self.stats.failed += len(events)
        self._warn(
            len(events), f"{status or 'no connection'}: {data[:200].decode(errors='replace')}"
        )

    def _warn(self, count: int, reason: str) -> None:
        """One warning a minute at most: a Pulse outage must not flood the app's log."""
        self._unreported += count
        now = time.monotonic()
        if self._closing.is_set() or now - self._warned_at >= WARN_EVERY:
            log.warning(
                "Pulse middleware: %d events not delivered since the last warning (latest: %s)",
                self._unreported,
                reason,
            )
            self._unreported, self._warned_at = 0, now

    def _post(self, body: bytes) -> tuple[int, str | None, bytes]:
        """One POST on a kept-alive connection; a stale one is replaced once, at once."""
        for reused in (self._conn is not None, False):
            if self._conn is None:
                host, port = self._address
                cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                self._conn = cls(host, port, timeout=self.timeout)
            try:
                self._conn.request("POST", self._path, body, self._headers)
                response = self._conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if reused:
                    continue  # the server closed an idle keep-alive connection
                raise
            if response.will_close:
                self._conn.close()
                self._conn = None
            return response.status, response.getheader("Retry-After"), data
        raise AssertionError("unreachable")  # pragma: no cover


def _refused(data: bytes) -> int:
    """Items Pulse reported invalid in a 202 answer (the others were stored)."""
    try:
        errors = json.loads(data).get("errors")
    except (ValueError, AttributeError):
        return 0
    return len(errors) if isinstance(errors, list) else 0
