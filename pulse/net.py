"""Facts about the network peer of the current request, and cheap address parsing."""

import socket

from flask import request


def client_address() -> str:
    """The client's IP as seen after ProxyFix (only trusted hops are honoured)."""
    return request.remote_addr or "unknown"


def ipv4_value(text: str) -> int | None:
    """A dotted-quad IPv4 address as an integer, or None: no ipaddress object on hot paths."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):  # not an address; ValueError: a NUL in it
        return None
