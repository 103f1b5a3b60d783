"""Import nginx/Apache access logs: the traffic that never ran the JavaScript tracker.

AI crawlers and most bots fetch HTML and leave; only the web server saw them. Each
line of a "combined" (or "common") log becomes one pageview item that goes through
the same pipeline as a trusted server's (`Sender(server=True)`), so labels, visitor
ids and visits are computed as for live traffic, and the IP is used for the country
and the day's visitor hash, then dropped (the pipeline never stores it).

What is imported: one rule, the same for humans, bots and agents, so that
the numbers stay comparable with the tracker's:
- GET and HEAD only: other methods are form posts and API calls, not page views;
- every status is kept and recorded in `props.status`: a crawler's 404s and 5xx
  are worth seeing (which dead URLs does GPTBot still ask for?);
- static assets are skipped by extension (`pulse.integrations.ASSET_EXTENSIONS`):
  they are fetched because of a page, not instead of one; robots.txt, sitemaps,
  llms.txt, feeds and PDFs are documents and are kept;
- lines older than the pipeline's backfill limit (30 days) are counted, not imported.

Idempotent: an event id hashes (site, the raw line, its occurrence number among
identical lines), so re-reading a file, or a rotated copy that overlaps it, adds
nothing (`store.write` skips ids the site has). Resumable: after each committed
batch the byte offset is saved under the file's identity (path, inode, first-line
hash; a file now shorter than its offset starts over) in a JSON file replaced
atomically (config `IMPORT_CHECKPOINTS`, default `instance/import-checkpoints.json`).
A batch job: rows are written straight to the database, never through the Redis
buffer, and the per-site ingest budget does not apply.
"""

from __future__ import annotations

import gzip
import hashlib
import ipaddress
import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from flask import current_app
from sqlalchemy import select

from pulse.extensions import db
from pulse.ingest import pipeline, store
from pulse.ingest.facts import RequestFacts
from pulse.ingest.sites import Sender
from pulse.integrations import is_asset
from pulse.models import Site

# A log import is the legitimate backfill: older than the API's 30 days, up to ~13 months.
IMPORT_MAX_AGE = timedelta(days=400)

BATCH_SIZE = 500
METHODS = frozenset({"GET", "HEAD"})
GZIP_MAGIC = b"\x1f\x8b"
RECENT_LINES = 65_536  # identical lines further apart than this share an id (never seen)
REPLAY_BYTES = 4 << 20  # on resume, re-count the identical lines just before the offset
SAMPLES = 5

_LINE = re.compile(
    rb'^(?P<host>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    rb"(?P<status>\d{3}) (?P<bytes>\d+|-)"
    rb'(?: "(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?(?:\s.*)?$'
)
_TIME = re.compile(r"(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_ESCAPE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|.)")


class Malformed(ValueError):
    """A line that is not in combined or common log format."""


@dataclass(frozen=True)
class LogLine:
    """The fields of one access-log line that Pulse uses."""

    ip: str | None
    ts: datetime
    method: str
    target: str
    status: int
    size: int
    referrer: str | None
    user_agent: str | None


def _unescape(value: bytes) -> str:
    """nginx writes `\\x22`, Apache `\\"`: give the characters back."""
    if b"\\" in value:
        value = _ESCAPE.sub(lambda m: bytes([int(m[1][1:], 16)]) if len(m[1]) == 3 else m[1], value)
    return value.decode("utf-8", "replace")


def parse_time(text: str) -> datetime:
    """`10/Oct/2000:13:55:36 -0700` with its offset (no locale-dependent strptime)."""
    match = _TIME.match(text)
    month = _MONTHS.get(match[2].lower()) if match else None
    if match is None or month is None:
        raise Malformed(f"bad time {text!r}")
    offset = timedelta(hours=int(match[8]), minutes=int(match[9]))
    tz = timezone(-offset if match[7] == "-" else offset)
    try:
        return datetime(
            int(match[3]), month, int(match[1]), *map(int, match.group(4, 5, 6)), tzinfo=tz
        )
    except ValueError as exc:
        raise Malformed(f"bad time {text!r}") from exc


def parse_line(line: bytes) -> LogLine:
    """One line of combined or common format; raises Malformed."""
    match = _LINE.match(line)
    if match is None:
        raise Malformed("not combined or common log format")
    request = _unescape(match["request"]).split(" ")
    method, target = (request[0], request[1]) if len(request) in (2, 3) else ("", "")
    host = match["host"].decode("ascii", "replace")
    try:
        ip: str | None = str(ipaddress.ip_address(host))
    except ValueError:
        ip = None  # a host name (HostnameLookups on): no country, no per-IP visitor hash
    referrer = _unescape(match["referrer"]) if match["referrer"] is not None else "-"
    agent = _unescape(match["agent"]) if match["agent"] is not None else "-"
    return LogLine(
        ip=ip,
        ts=parse_time(match["time"].decode("ascii", "replace")),
        method=method,
        target=target,
        status=int(match["status"]),
        size=0 if match["bytes"] == b"-" else int(match["bytes"]),
        referrer=None if referrer in ("-", "") else referrer[:2048],
        user_agent=None if agent in ("-", "") else agent[:1024],
    )


def skip_reason(line: LogLine) -> str | None:
    """Why a well-formed line is not a page view, or None when it is one."""
    if line.method not in METHODS:
        return "other methods" if line.method else "not a request"
    if not line.target.startswith("/"):
        return "not a request"
    if is_asset(line.target.split("?", 1)[0]):
        return "static assets"
    return None


def _path(target: str) -> str:
    """The path and query of an origin-form or absolute-form request target."""
    if target.startswith(("http://", "https://")):
        rest = target.split("//", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return target


def to_item(line: LogLine, domain: str, event_id: str) -> dict[str, Any]:
    """The tracking item a trusted server would send for this hit."""
    item: dict[str, Any] = {
        "id": event_id,
        "name": "pageview",
        "url": f"https://{domain}{_path(line.target)}"[:2048],
        "ts": line.ts,
        "props": {"status": line.status, "method": line.method, "bytes": line.size},
    }
    if line.referrer:
        item["referrer"] = line.referrer
    if line.ip:
        item["ip"] = line.ip
    if line.user_agent:
        item["user_agent"] = line.user_agent
    return item


class Occurrences:
    """Counts recent identical lines, so two identical hits in one second stay two events."""

    def __init__(self, limit: int = RECENT_LINES) -> None:
        self.seen: dict[bytes, int] = {}
        self.limit = limit

    def next(self, line: bytes) -> int:
        """How many times this line was seen before (0 the first time)."""
        key = hashlib.blake2b(line, digest_size=16).digest()
        count = self.seen.pop(key, 0)
        self.seen[key] = count + 1
        if len(self.seen) > self.limit:
            del self.seen[next(iter(self.seen))]
        return count


def event_id(site_id: int, line: bytes, occurrence: int) -> str:
    """Deterministic and independent of the file's name: overlapping files agree."""
    digest = hashlib.blake2b(f"{site_id}:{occurrence}:".encode() + line, digest_size=20)
    return "log:" + digest.hexdigest()


@dataclass
class Summary:
    """What an import did, for the command's report and the tests."""

    read: int = 0
    imported: int = 0
    duplicates: int = 0
    malformed: int = 0
    too_old: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def report(self) -> list[str]:
        """Lines for the terminal."""

        def detail(counts: Counter[str]) -> str:
            return ", ".join(f"{k} {n}" for k, n in counts.most_common())

        out = list(self.notes)
        out.append(
            f"lines read {self.read}, imported {self.imported}, duplicates {self.duplicates}, "
            f"skipped {sum(self.skipped.values())}, malformed {self.malformed}"
        )
        if self.skipped:
            out.append(f"  skipped: {detail(self.skipped)}")
        if self.rejected:
            out.append(f"  rejected by the pipeline: {detail(self.rejected)}")
        if self.too_old:
            days = IMPORT_MAX_AGE.days
            out.append(f"  {self.too_old} lines older than {days} days were not imported")
        labels = ", ".join(f"{k} {self.labels.get(k, 0)}" for k in ("human", "bot", "agent"))
        out.append(f"pageviews by label (imported and duplicates): {labels}")
        for sample in self.samples:
            out.append(f"  malformed: {sample}")
        return out


# Checkpoints -------------------------------------------------------------------------


def checkpoint_file() -> str:
    """Where offsets are kept: config IMPORT_CHECKPOINTS, else the instance folder."""
    configured = current_app.config.get("IMPORT_CHECKPOINTS")
    return configured or os.path.join(current_app.instance_path, "import-checkpoints.json")


class Checkpoints:
    """Byte offsets by (site, file identity), saved atomically after each committed batch."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str, identity: dict[str, Any]) -> dict[str, Any] | None:
        entry = self._load().get(key)
        if not isinstance(entry, dict) or entry.get("identity") != identity:
            return None  # another file now has this name (rotated or truncated)
        return entry

    def save(self, key: str, identity: dict[str, Any], offset: int, line: int) -> None:
        """Re-read, update one entry, write a temporary file, fsync, rename over."""
        data = self._load()
        data[key] = {"identity": identity, "offset": offset, "line": line}
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".import-checkpoints.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=1, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


# Reading files -----------------------------------------------------------------------


@dataclass
class LogFile:
    """An open log: `stream` yields decompressed lines, `raw` is the file on disk."""

    raw: IO[bytes]
    stream: IO[bytes]
    size: int
    compressed: bool


@contextmanager
def open_log(path: str) -> Iterator[LogFile]:
    """Plain or gzip, told apart by the magic bytes (not the name)."""
    raw = open(path, "rb")  # noqa: SIM115 (closed below, after the gzip reader)
    try:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            yield LogFile(raw, stream, os.fstat(raw.fileno()).st_size, compressed)
        finally:
            stream.close()
    finally:
        raw.close()


def identity(path: str) -> dict[str, Any]:
    """What makes this file the one a checkpoint was saved for."""
    with open_log(path) as log:
        first = log.stream.readline(4096)
        return {
            "inode": os.fstat(log.raw.fileno()).st_ino,
            "first_line": hashlib.blake2b(first, digest_size=16).hexdigest(),
        }


def _seek(stream: IO[bytes], start: int, occurrences: Occurrences) -> None:
    """Go to `start`, re-counting the lines just before it so occurrence numbers agree."""
    position = max(0, start - REPLAY_BYTES)
    stream.seek(position)
    if position:
        position += len(stream.readline())  # the rest of a line cut by the window
    while position < start:
        line = stream.readline()
        if not line or position + len(line) > start:
            break
        position += len(line)
        stripped = line.rstrip(b"\r\n")
        if stripped:
            occurrences.next(stripped)
    if position != start:
        stream.seek(start)


# Importing ---------------------------------------------------------------------------


def find_site(ref: str) -> Site | None:
    """A site by id or site key."""
    if ref.isdigit() and len(ref) < 10:
        return db.session.get(Site, int(ref))
    return db.session.scalar(select(Site).where(Site.site_key == ref))


def prepare_lines(items: list[dict[str, Any]], sender: Sender, summary: Summary) -> list[dict]:
    """Rows for the items the pipeline accepts; refusals are counted, never raised.

    Age is checked here first, against the same clock the pipeline uses, so lines
    past the backfill limit are reported as such rather than as errors.
    """
    facts = RequestFacts(ip="", user_agent="", origin=None)  # each item carries its own
    oldest = facts.received_at - IMPORT_MAX_AGE
    rows = []
    for item in items:
        if item["ts"] < oldest:
            summary.too_old += 1
            continue
        try:
            row = pipeline.prepare_item(item, sender, facts, None, None, max_age=IMPORT_MAX_AGE)
        except pipeline.ItemRejected as exc:
            summary.rejected[exc.error] += 1
            continue
        if row is None:
            summary.skipped["prefetches"] += 1
            continue
        summary.labels[row["label"]] += 1
        rows.append(row)
    return rows


@dataclass
class Importer:
    """Reads files into one site, committing every `batch_size` items."""

    site: Site
    checkpoints: Checkpoints
    restart: bool = False
    batch_size: int = BATCH_SIZE
    progress: Callable[[int], None] | None = None
    before_commit: Callable[[int], None] | None = None  # tests: fail a batch on purpose
    summary: Summary = field(default_factory=Summary)
    batches: int = 0

    def __post_init__(self) -> None:
        site = self.site
        self.domain = site.domain
        self.sender = Sender(site.id, site.team_id, site.team.tier, site.timezone, server=True)

    def _commit(self, items: list[dict[str, Any]]) -> None:
        rows = prepare_lines(items, self.sender, self.summary)
        self.batches += 1
        try:
            written = store.write(rows) if rows else 0
            if self.before_commit is not None:
                self.before_commit(self.batches)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        self.summary.imported += written
        self.summary.duplicates += len(rows) - written

    def run_file(self, path: str) -> None:
        """Import one file from its checkpoint (or the start), batch by batch."""
        real = os.path.realpath(path)
        key = f"{self.sender.site_id}:{real}"
        ident = identity(real)
        saved = None if self.restart else self.checkpoints.get(key, ident)
        occurrences = Occurrences()
        with open_log(real) as log:
            if saved and not log.compressed and saved["offset"] > log.size:
                saved = None  # truncated in place: the offset means nothing any more
            start, number = (saved["offset"], saved["line"]) if saved else (0, 0)
            if start:
                _seek(log.stream, start, occurrences)
                self.summary.notes.append(
                    f"{path}: resuming after line {number} (byte {start}); "
                    "--restart reads it again from the start"
                )
            shown = self._advance(log, 0)
            offset, items = start, []
            for raw in log.stream:
                offset += len(raw)
                number += 1
                self.summary.read += 1
                item = self._item(raw.rstrip(b"\r\n"), occurrences, path, number)
                if item is not None:
                    items.append(item)
                if len(items) >= self.batch_size:
                    self._commit(items)
                    items = []
                    self.checkpoints.save(key, ident, offset, number)
                    shown = self._advance(log, shown)
            if items:
                self._commit(items)
            self.checkpoints.save(key, ident, offset, number)
            if self.progress is not None:
                self.progress(log.size - shown)

    def _item(self, line: bytes, seen: Occurrences, path: str, number: int) -> dict | None:
        if not line.strip():
            self.summary.skipped["blank lines"] += 1
            return None
        occurrence = seen.next(line)
        try:
            parsed = parse_line(line)
        except Malformed as exc:
            self.summary.malformed += 1
            if len(self.summary.samples) < SAMPLES:
                text = line[:160].decode("utf-8", "replace")
                self.summary.samples.append(f"{path}:{number}: {exc}: {text}")
            return None
        reason = skip_reason(parsed)
        if reason is not None:
            self.summary.skipped[reason] += 1
            return None
        return to_item(parsed, self.domain, event_id(self.sender.site_id, line, occurrence))

    def _advance(self, log: LogFile, shown: int) -> int:
        """Report the bytes of the file on disk read since the last call."""
        position = min(log.raw.tell(), log.size)
        if self.progress is not None and position > shown:
            self.progress(position - shown)
        return max(position, shown)


def import_files(
    paths: Sequence[str],
    site: Site,
    *,
    restart: bool = False,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
    checkpoints: str | None = None,
    before_commit: Callable[[int], None] | None = None,
) -> Summary:
    """Import access logs into `site`; safe to run again, resumes where it stopped."""
    importer = Importer(
        site,
        Checkpoints(checkpoints or checkpoint_file()),
        restart=restart,
        batch_size=batch_size,
        progress=progress,
        before_commit=before_commit,
    )
    for path in paths:
        importer.run_file(path)
    return importer.summary
