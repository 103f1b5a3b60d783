"""Country of an IP address from an offline database shipped in a PyPI package.

The database is `iptocc`'s: the five Regional Internet Registries' delegation files
(who an address block is assigned to, and in which country), compiled into the wheel
and refreshed by a new release every night; upgrading the package refreshes it. No
network at run time and no download step. RIR data names the country of the holder
of a block, which agrees with commercial geolocation for roughly 95% of IPv4
addresses; anycast and multinational blocks give the holder's country (1.1.1.1 -> AU).

The IP address is never cached or logged here: it lives only for the call.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from bisect import bisect_right
from collections.abc import Callable

from pulse.net import ipv4_value

log = logging.getLogger(__name__)

_NOT_COUNTRIES = frozenset({"EU", "AP", "ZZ", "XX", "A1", "A2", "O1"})  # RIR/legacy placeholders

_lookup: Callable[[str], str | None] | None = None
_lock = threading.Lock()


def _unavailable(_ip: str) -> str | None:
    """Stand-in when the database package is missing: every country is unknown."""
    return None


def _database() -> Callable[[str], str | None]:
    """The lookup function, loaded once on first use (thread-safe)."""
    global _lookup
    if _lookup is None:
        with _lock:
            if _lookup is None:
                try:
                    from iptocc import country_code

                    _lookup = country_code
                except ImportError:  # pragma: no cover - the package is a dependency
                    log.warning("iptocc is not installed: countries will be unknown")
                    _lookup = _unavailable
    return _lookup


_NOT_GLOBAL_V4 = sorted(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
)  # fmt: skip  (private, shared, loopback, link-local, documentation, multicast, reserved)
_V4_STARTS = [int(net.network_address) for net in _NOT_GLOBAL_V4]
_V4_ENDS = [int(net.broadcast_address) for net in _NOT_GLOBAL_V4]


def _public_v4(text: str) -> str | None:
    """Fast path for dotted-quad IPv4 (most traffic): a bisect over the non-global ranges."""
    value = ipv4_value(text)
    if value is None:
        return None
    index = bisect_right(_V4_STARTS, value) - 1
    if index >= 0 and value <= _V4_ENDS[index]:
        return None
    return text


def _public_address(ip: str) -> str | None:
    """The canonical text of a globally routable address; None for private, loopback, junk."""
    text = ip.strip()
    if ":" not in text:
        return _public_v4(text)
    text = text.strip("[]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global or address.is_multicast:
        return None
    return str(address)


def country_for(ip: str | None) -> str | None:
    """ISO 3166-1 alpha-2 code of a public IP's country, or None; never raises."""
    if not ip or not isinstance(ip, str) or len(ip) > 64:
        return None
    address = _public_address(ip)
    if address is None:
        return None
    try:
        code = _database()(address)
    except Exception:  # a lookup failure must never fail an ingest
        log.exception("country lookup failed")
        return None
    if not code or len(code) != 2 or not code.isalpha() or code.upper() in _NOT_COUNTRIES:
        return None
    return code.upper()
