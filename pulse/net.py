"""Facts about the network peer of the current request."""

from flask import request


def client_address() -> str:
    """The client's IP as seen after ProxyFix (only trusted hops are honoured)."""
    return request.remote_addr or "unknown"
