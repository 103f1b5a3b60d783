"""Layer 3: is the client IP inside a cloud provider's published ranges?

The ranges ship in datacenter_ranges.txt (see its header for sources and date; rebuild
with build_ranges.py). They load on first use and are searched with bisect over sorted
integer ranges. Only the provider's name ever leaves this module, never the address.
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from functools import cache
from pathlib import Path

from pulse.net import ipv4_value

RANGES_FILE = Path(__file__).with_name("datacenter_ranges.txt")


class _Table:
    """Sorted, non-overlapping [start, end] integer ranges with a provider each."""

    __slots__ = ("starts", "ends", "providers")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.providers: list[str] = []

    def add(self, start: int, end: int, provider: str) -> None:
        if self.ends and start <= self.ends[-1]:
            return  # overlaps the previous range: the file's first provider wins
        self.starts.append(start)
        self.ends.append(end)
        self.providers.append(provider)

    def find(self, value: int) -> str | None:
        index = bisect_right(self.starts, value) - 1
        if index >= 0 and value <= self.ends[index]:
            return self.providers[index]
        return None


@cache
def _tables(path: Path = RANGES_FILE) -> tuple[_Table, _Table]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line[0] == "#":
            continue
        cidr, _, provider = line.partition(" ")
        net = ipaddress.ip_network(cidr, strict=False)
        start = int(net.network_address)
        rows.append(
            (net.version, start, start + net.num_addresses - 1, provider.strip() or "cloud")
        )
    rows.sort()
    v4, v6 = _Table(), _Table()
    for version, start, end, provider in rows:
        (v4 if version == 4 else v6).add(start, end, provider)
    return v4, v6


def load() -> None:
    """Read the ranges now instead of on the first lookup (for app start-up)."""
    _tables()


def cloud_provider(ip: object) -> str | None:
    """The cloud provider whose published ranges contain `ip`, or None."""
    if not isinstance(ip, str) or not ip or len(ip) > 64:
        return None
    if ":" not in ip:  # dotted-quad IPv4, most traffic: no ipaddress object needed
        value = ipv4_value(ip.strip())
        return None if value is None else _tables()[0].find(value)
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    v4, v6 = _tables()
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is None:
            return v6.find(int(address))
        return v4.find(int(address.ipv4_mapped))
    return v4.find(int(address))
