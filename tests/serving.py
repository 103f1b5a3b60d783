"""A WSGI app served on a free loopback port in a thread, for tests that need real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wsgi import ClosingIterator

DRAIN_SECONDS = 15.0


class InFlight:
    """Wraps a WSGI app and counts the requests it is still answering.

    A browser may still have requests going (htmx panels, polls) when a test ends.
    The test's teardown must not empty the database under them: a TRUNCATE waiting on
    a request's locks, while that request waits on the TRUNCATE's, is a deadlock that
    PostgreSQL may settle by cancelling the TRUNCATE, which leaves the next test a
    database that is not empty.
    """

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app
        self.count = 0
        self.idle = threading.Condition()

    def _leave(self) -> None:
        with self.idle:
            self.count -= 1
            self.idle.notify_all()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        with self.idle:
            self.count += 1
        try:
            body = self.wsgi_app(environ, start_response)
        except BaseException:
            self._leave()
            raise
        return ClosingIterator(body, [self._leave])  # closed once the body is sent

    def wait_idle(self, timeout: float) -> bool:
        with self.idle:
            return self.idle.wait_for(lambda: self.count == 0, timeout)


@contextmanager
def serve(wsgi_app: Callable[..., Any], name: str = "test-server") -> Iterator[str]:
    """Yield the base URL of `wsgi_app` served on 127.0.0.1; stop it on the way out.

    On the way out, new connections are refused, then the requests still being
    answered are given up to DRAIN_SECONDS to finish (an event stream may not).
    """
    in_flight = InFlight(wsgi_app)
    server = make_server("127.0.0.1", 0, in_flight, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        in_flight.wait_idle(DRAIN_SECONDS)
