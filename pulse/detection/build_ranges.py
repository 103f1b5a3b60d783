"""Rebuild datacenter_ranges.txt offline from files the cloud providers publish.

Download the providers' files by hand (or in CI with network), then run for example:

    python -m pulse.detection.build_ranges pulse/detection/datacenter_ranges.txt \
        --aws ip-ranges.json --gcp cloud.json --oracle public_ip_ranges.json \
        --azure ServiceTags_Public.json --geofeed DigitalOcean=google.csv \
        --geofeed Linode=linode.csv --list Hetzner=hetzner.txt

Each network is collapsed per provider, overlaps keep the first provider, and the file
is written sorted so `network.py` can bisect it without sorting at load time. Never add
ranges that carry end users (Cloudflare WARP, iCloud Private Relay, Chrome IP Protection,
Google front ends): a human behind them would be scored as a bot.
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _net(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _aws(path: Path) -> Iterator[str]:
    data = json.loads(path.read_text())
    yield from (p["ip_prefix"] for p in data.get("prefixes", []))
    yield from (p["ipv6_prefix"] for p in data.get("ipv6_prefixes", []))


def _gcp(path: Path) -> Iterator[str]:
    for p in json.loads(path.read_text()).get("prefixes", []):
        yield p.get("ipv4Prefix") or p.get("ipv6Prefix") or ""


def _oracle(path: Path) -> Iterator[str]:
    for region in json.loads(path.read_text()).get("regions", []):
        yield from (c["cidr"] for c in region.get("cidrs", []))


def _azure(path: Path) -> Iterator[str]:
    for tag in json.loads(path.read_text()).get("values", []):
        if tag.get("name") == "AzureCloud":  # the whole public datacenter space
            yield from tag.get("properties", {}).get("addressPrefixes", [])


def _geofeed(path: Path) -> Iterator[str]:
    with path.open(newline="") as handle:
        for row in csv.reader(line for line in handle if not line.startswith("#")):
            if row:
                yield row[0]


def _plain(path: Path) -> Iterator[str]:
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            yield line.split()[0]


def _ours(path: Path) -> Iterator[tuple[str, str]]:
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            cidr, _, provider = line.partition(" ")
            yield cidr, provider.strip()


def collapse(pairs: Iterable[tuple[str, str]]) -> list[tuple[Network, str]]:
    """Collapse per provider, drop overlaps (first provider wins), sort by address."""
    by_provider: dict[str, list[Network]] = {}
    for cidr, provider in pairs:
        net = _net(cidr)
        if net is not None and provider and net.is_global:
            by_provider.setdefault(provider, []).append(net)
    merged: list[tuple[Network, str]] = []
    for provider, nets in by_provider.items():
        for version in (4, 6):
            same = [n for n in nets if n.version == version]
            merged.extend((n, provider) for n in ipaddress.collapse_addresses(same))
    merged.sort(key=lambda item: (item[0].version, int(item[0].network_address), item[0].prefixlen))
    kept: list[tuple[Network, str]] = []
    for net, provider in merged:
        last = kept[-1][0] if kept else None
        if last is not None and last.version == net.version and net.subnet_of(last):
            continue
        kept.append((net, provider))
    return kept


def write(out: Path, ranges: list[tuple[Network, str]], sources: list[str]) -> None:
    """Write the ranges file with a header that says where the data came from."""
    lines = [
        "# Datacenter and cloud IP ranges for pulse.detection.network (offline; no lookups).",
        *(f"# Source: {s}" for s in sources),
        f"# Built: {date.today().isoformat()} by pulse.detection.build_ranges"
        f" ({len(ranges)} networks).",
        "# Left out on purpose: Cloudflare and Google front-end ranges, which carry end users",
        "# (WARP, iCloud Private Relay, Chrome IP Protection).",
        "# Format: <network> <provider>, sorted, non-overlapping.",
    ]
    lines += [f"{net} {provider}" for net, provider in ranges]
    out.write_text("\n".join(lines) + "\n")


def _named(values: list[str]) -> Iterator[tuple[str, Path]]:
    for value in values:
        name, _, path = value.partition("=")
        yield name, Path(path)


def main(argv: list[str] | None = None) -> None:
    """Command line: merge provider files into one ranges file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--aws", type=Path)
    parser.add_argument("--gcp", type=Path)
    parser.add_argument("--oracle", type=Path)
    parser.add_argument("--azure", type=Path)
    parser.add_argument("--geofeed", action="append", default=[], metavar="NAME=CSV")
    parser.add_argument("--list", action="append", default=[], metavar="NAME=TXT")
    parser.add_argument("--ranges", type=Path, help="an existing ranges file to merge in")
    parser.add_argument("--source", action="append", default=[], help="a line for the header")
    args = parser.parse_args(argv)
    pairs: list[tuple[str, str]] = []
    readers = [
        ("AWS", args.aws, _aws),
        ("Google Cloud", args.gcp, _gcp),
        ("Oracle Cloud", args.oracle, _oracle),
        ("Azure", args.azure, _azure),
    ]
    for provider, path, reader in readers:
        if path:
            pairs += [(cidr, provider) for cidr in reader(path)]
    for provider, path in _named(args.geofeed):
        pairs += [(cidr, provider) for cidr in _geofeed(path)]
    for provider, path in _named(args.list):
        pairs += [(cidr, provider) for cidr in _plain(path)]
    if args.ranges:
        pairs += list(_ours(args.ranges))
    write(args.out, collapse(pairs), args.source or ["provider files given on the command line"])


if __name__ == "__main__":
    main()
