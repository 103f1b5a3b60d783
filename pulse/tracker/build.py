"""Build the minified trackers from src/pulse.js, and check them without node.

    python -m pulse.tracker.build           # minify with terser (needs node/npx), print sizes
    python -m pulse.tracker.build --check   # no node: dist is current and within budget
    python -m pulse.tracker.build --sizes   # print the gzipped sizes

Each dist file starts with a header naming the SHA-256 of the source it was built
from, so a test can tell a stale dist from a current one without running node.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "src" / "pulse.js"
DIST = HERE / "dist"
TERSER = "terser@5.51.2"  # pinned: the same source must always give the same bytes
HEADER = "/*! Pulse {name} src-sha256:{digest} */\n"
HEADER_RE = re.compile(r"^/\*! Pulse (\S+) src-sha256:([0-9a-f]{64}) \*/\n")


@dataclass(frozen=True)
class Build:
    """One output file: its name, the value of the PULSE_FULL flag, its gzip budget."""

    name: str
    flavour: str
    full: bool
    budget: int  # bytes, gzip level 9


BUILDS = (
    Build("pulse.js", "full", True, 3072),
    Build("pulse.core.js", "core", False, 1536),
)


def source_digest() -> str:
    return hashlib.sha256(SOURCE.read_bytes()).hexdigest()


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def built_from(data: bytes) -> str | None:
    """The source digest written in a dist file's header (None when there is none)."""
    match = HEADER_RE.match(data[:200].decode("utf-8", "replace"))
    return match.group(2) if match else None


def minify(build: Build) -> str:
    npx = shutil.which("npx")
    if npx is None:
        raise SystemExit("npx not found: building the tracker needs Node.js")
    command = [
        npx,
        "--yes",
        TERSER,
        str(SOURCE),
        "--compress",
        "passes=3,pure_getters=true",
        "--mangle",
        "--define",
        f"PULSE_FULL={'true' if build.full else 'false'}",
        "--format",
        "comments=false",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
    return result.stdout.strip() + "\n"


def build_all() -> None:
    digest = source_digest()
    DIST.mkdir(exist_ok=True)
    for build in BUILDS:
        code = minify(build)
        if "PULSE_FULL" in code:
            raise SystemExit(f"{build.name}: the PULSE_FULL flag survived minification")
        header = HEADER.format(name=build.name, digest=digest)
        (DIST / build.name).write_text(header + code, encoding="utf-8")


def problems() -> list[str]:
    """What is wrong with dist: stale builds, missing files, sizes over budget."""
    found = []
    digest = source_digest()
    for build in BUILDS:
        path = DIST / build.name
        if not path.exists():
            found.append(f"{build.name}: missing (run python -m pulse.tracker.build)")
            continue
        data = path.read_bytes()
        if built_from(data) != digest:
            found.append(f"{build.name}: stale, src/pulse.js changed since it was built")
        if gzip_size(data) > build.budget:
            found.append(f"{build.name}: {gzip_size(data)} B gzipped > {build.budget} B budget")
    return found


def print_sizes() -> None:
    for build in BUILDS:
        data = (DIST / build.name).read_bytes()
        print(
            f"{build.name:15} {len(data):6} B raw  {gzip_size(data):5} B gzip -9"
            f"  (budget {build.budget} B)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="verify dist without node")
    group.add_argument("--sizes", action="store_true", help="print gzipped sizes")
    args = parser.parse_args(argv)
    if not (args.check or args.sizes):
        build_all()
    if args.check:
        for problem in problems():
            print(problem, file=sys.stderr)
        if problems():
            return 1
    print_sizes()
    return 0


if __name__ == "__main__":
    sys.exit(main())
