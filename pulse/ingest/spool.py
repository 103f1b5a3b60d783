"""The ingest spool: each web process's local outbox in front of the Redis buffer.

A round trip to Redis per tracking request cost more than everything else the
request does (about 100 µs of the worker's CPU and 55 of Redis's, against 15-90 for
validation, enrichment and classification). So a request whose limits are far from
biting appends its rows to a file of this process instead (one write(2): it is in the
page cache, so it survives the process being killed, as Redis's own AOF with fsync
every second does) and counts its limits in memory. A shipper thread moves what the
file holds to the Redis queue every SHIP_INTERVAL, merged into one item, together with
the counts the process added, in one script that returns every process's totals. The
file goes only once Redis has the item.

Limits stay exact where they bite. A per-IP count is taken here only while it is
within 1/FAST_SHARE of the limit, and a site's within all but 1/FAST_SHARE of its
budget; beyond that the request takes the exact path (accept.admit), which adds what
this process has not shipped yet. So P processes admit at most P x limit/FAST_SHARE
more than the limit, and only in a burst inside one ship interval.

A process that dies leaves its file behind: any spool of the same Redis, and the
drainers, ship such orphans (a live file is flock-ed by its process). Events are
written idempotently on their ids, so an item shipped twice is counted once.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from pulse.ingest import buffer, limits

log = logging.getLogger(__name__)
SHIP_INTERVAL = 0.05  # seconds between two shipments of one process
RECOVER_EVERY = 5.0  # seconds between two looks for the files of dead processes
FAST_SHARE = 8
MAX_ITEM_BYTES = 1_000_000  # a shipment's rows are merged into queue items of about this
FILE_BYTES = 2_000_000  # a spool file this full is closed and shipped on its own ...
MAX_FILES = 16  # ... and with this many waiting, requests take the exact path instead
SUFFIX = ".spool"

# KEYS: queue, counters... ARGV: window seconds, n, n items, then one delta per counter.
# Pushes the items, adds the deltas, returns the counters' totals.
SHIP_LUA = """
local window = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
for i = 1, n do redis.call("RPUSH", KEYS[1], ARGV[2 + i]) end
local totals = {}
for i = 2, #KEYS do
  local delta = tonumber(ARGV[1 + n + i])
  local total = redis.call("INCRBY", KEYS[i], delta)
  if total == delta then redis.call("EXPIRE", KEYS[i], window) end
  totals[#totals + 1] = total
end
return totals
"""


@dataclass
class Count:
    """One limit counter as this process sees it."""

    merged: int = 0  # every process's total, as Redis returned it last
    pending: int = 0  # added here, not shipped yet


def directory_for(config: Mapping[str, Any], url: str) -> Path:
    """Where the spools of one Redis live: INGEST_SPOOL_DIR, one folder per Redis URL."""
    base = Path(config["INGEST_SPOOL_DIR"])
    return base / hashlib.sha256(url.encode()).hexdigest()[:16]


def merge(items: list[bytes]) -> list[bytes]:
    """Queue items (JSON lists of rows) joined into lists of about MAX_ITEM_BYTES."""
    merged: list[bytes] = []
    part: list[bytes] = []
    size = 0
    for item in items:
        inner = item[1:-1]
        if not inner:
            continue
        if part and size + len(inner) > MAX_ITEM_BYTES:
            merged.append(b"[" + b",".join(part) + b"]")
            part, size = [], 0
        part.append(inner)
        size += len(inner) + 1
    if part:
        merged.append(b"[" + b",".join(part) + b"]")
    return merged


def _new_file(directory: Path) -> tuple[int, Path]:
    """A spool file, locked before it takes the name recoverers look for: a file is never
    under that name without its live owner's lock (else a recoverer could ship it empty
    and remove it while its owner goes on appending to the removed file)."""
    name = f"{os.getpid()}-{secrets.token_hex(6)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(directory / f".{name}.new", flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours while we live
        path = directory / f"{name}{SUFFIX}"
        os.rename(directory / f".{name}.new", path)
    except OSError:
        os.close(fd)
        (directory / f".{name}.new").unlink(missing_ok=True)
        raise
    return fd, path


def _items_in(path: Path) -> list[bytes]:
    """The queue items of a closed spool file, one a line."""
    lines = path.read_bytes().split(b"\n")[:-1]
    return [line for line in lines if line.startswith(b"[") and line.endswith(b"]")]


def _window_of(key: str) -> int:
    return int(key.rsplit(":", 1)[1])


class Spool:
    """This process's outbox for one Redis: `take` in requests, `ship` in a thread."""

    def __init__(self, url: str, directory: Path, interval: float = SHIP_INTERVAL) -> None:
        self.url, self.directory, self.interval = url, directory, interval
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.healthy = True  # the last shipment reached Redis
        self.counts: dict[str, Count] = {}
        self._unshipped: set[str] = set()  # keys of counts with pending > 0
        self._pruned_window = 0
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._outbox: list[tuple[int, Path]] = []  # closed files awaiting Redis (fd, path)
        self._stopping = threading.Event()
        self._script = buffer.connection(url).register_script(SHIP_LUA)
        self._thread: threading.Thread | None = None

    # In the request -------------------------------------------------------------------

    def take(
        self, ip_key: str, ip_limit: int, site_key: str, site_budget: int, events: int, item: bytes
    ) -> bool:
        """Spool `item` and count it, or False: the exact path has to decide."""
        with self._lock:
            if not self.healthy or len(self._outbox) >= MAX_FILES:
                return False  # Redis is away, or the shipper this far behind
            ip = self.counts.get(ip_key) if ip_key else None
            if ip_key and (ip.merged + ip.pending if ip else 0) + 1 > ip_limit // FAST_SHARE:
                return False
            site = self.counts.get(site_key) if site_key else None
            if site_key and (site.merged + site.pending if site else 0) + events > (
                site_budget - site_budget // FAST_SHARE
            ):
                return False
            try:
                self._append(item)
            except OSError:
                log.exception("ingest spool %s cannot be written; using Redis directly", self._path)
                self.healthy = False
                return False
            if ip_key:
                self._add(ip_key, 1)
            if site_key:
                self._add(site_key, events)
            return True

    def _add(self, key: str, pending: int) -> None:
        self.counts.setdefault(key, Count()).pending += pending
        self._unshipped.add(key)

    def claim(self, *keys: str) -> list[int]:
        """What this process counted on `keys` and has not shipped: the exact path adds it."""
        with self._lock:
            claimed = []
            for key in keys:
                count = self.counts.get(key) if key else None
                claimed.append(count.pending if count else 0)
                if count:
                    count.pending = 0
                    self._unshipped.discard(key)
            return claimed

    def learn(self, totals: Mapping[str, int]) -> None:
        """Totals that Redis returned for counters (from the exact path)."""
        with self._lock:
            for key, total in totals.items():
                if key:
                    self.counts.setdefault(key, Count()).merged = int(total)

    def _append(self, item: bytes) -> None:
        if self._fd is None:
            self._fd, self._path = _new_file(self.directory)
            self._size = 0
        line = item + b"\n"
        written = os.write(self._fd, line)
        if written != len(line):  # a full disk: take the torn line back, refuse the item
            os.ftruncate(self._fd, self._size)
            raise OSError(f"short write to the ingest spool ({written} of {len(line)} bytes)")
        self._size += written
        if self._size >= FILE_BYTES:
            self._close_file()

    def _close_file(self) -> None:
        """Hand the current file to the shipper; the next item opens a new one."""
        if self._fd is not None and self._path is not None:
            self._outbox.append((self._fd, self._path))
        self._fd, self._path = None, None

    # In the shipper thread ------------------------------------------------------------

    def ship(self) -> bool:
        """Push the closed files, one script call each, and the counts added since the
        last shipment (with the first). Memory holds one file at a time."""
        with self._lock:
            self._close_file()
            deltas = {key: self.counts[key].pending for key in self._unshipped}
            for key in deltas:
                self.counts[key].pending = 0
            self._unshipped.clear()
            files: list[tuple[int, Path] | None] = list(self._outbox)
            healthy = self.healthy
        if not files and not deltas and healthy:
            return True
        for index, file in enumerate(files or [None]):  # one call at least: counts, health
            sending = deltas if index == 0 else {}
            try:
                items = merge(_items_in(file[1])) if file else []
            except FileNotFoundError:  # not ours to lose: say so, and do not retry forever
                log.error("ingest spool: %s vanished before it was shipped", file and file[1])
                items = []
            try:
                totals = self._script(
                    keys=[buffer.QUEUE, *sending],
                    args=[limits.WINDOW, len(items), *items, *sending.values()],
                )
            except (RedisError, OSError) as exc:
                self._failed(sending, exc)
                return False
            with self._lock:
                for key, total in zip(sending, totals, strict=True):
                    self.counts.setdefault(key, Count()).merged = int(total)
                self.healthy = True
                if file:
                    self._outbox.remove(file)
            if file:
                file[1].unlink(missing_ok=True)
                os.close(file[0])
        self._prune()
        return True

    def _prune(self) -> None:
        """Forget the counts of past windows, once per window (not on every shipment)."""
        window = int(time.time()) // limits.WINDOW
        if window == self._pruned_window:
            return
        with self._lock:
            for key in [k for k in self.counts if _window_of(k) < window - 1]:
                if key not in self._unshipped:
                    del self.counts[key]
        self._pruned_window = window

    def _failed(self, deltas: dict[str, int], exc: Exception) -> None:
        """Redis did not take a shipment: its counts wait for the next, requests go direct."""
        with self._lock:
            for key, delta in deltas.items():
                self._add(key, delta)
            if self.healthy:
                log.warning("ingest spool: Redis unreachable (%s); not spooling", exc)
            self.healthy = False

    def run(self) -> None:
        next_recovery = 0.0
        while not self._stopping.wait(self.interval):
            try:
                self.ship()
                if time.monotonic() >= next_recovery:
                    recover(self.directory, self.url)
                    next_recovery = time.monotonic() + RECOVER_EVERY
            except Exception:
                log.exception("ingest spool shipment failed; retrying")

    def start(self) -> Spool:
        self._thread = threading.Thread(target=self.run, name="pulse-spool", daemon=True)
        self._thread.start()
        atexit.register(self.close)
        return self

    def close(self, timeout: float = 10.0) -> bool:
        """Stop the shipper and ship the rest; what Redis did not take stays on disk."""
        self._stopping.set()
        atexit.unregister(self.close)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return self.ship()


def recover(directory: Path, url: str) -> int:
    """Ship the spools that dead processes left in `directory`; returns items shipped."""
    shipped = 0
    try:
        paths = sorted(directory.glob("*" + SUFFIX))
    except OSError:
        return 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process lives and ships it
            if not path.exists():
                continue  # shipped and removed by its process while we opened it
            items = _items_in(path)
            merged = merge(items)
            if merged:
                buffer.connection(url).rpush(buffer.QUEUE, *merged)
            path.unlink(missing_ok=True)
            shipped += len(items)
            log.warning(
                "ingest spool: shipped %d requests left by a dead process (%s)",
                len(items),
                path.name,
            )
        finally:
            os.close(fd)
    return shipped


# (url, INGEST_SPOOL_DIR) -> (pid, spool), or None where the folder could not be made
_spools: dict[tuple[str, str], tuple[int, Spool | None]] = {}
_spools_lock = threading.Lock()


def for_process(config: Mapping[str, Any], url: str) -> Spool | None:
    """This process's spool for `url` (started on first use, again after a fork)."""
    if not config.get("INGEST_SPOOL", True):
        return None
    key = (url, config["INGEST_SPOOL_DIR"])
    held = _spools.get(key)
    if held is not None and held[0] == os.getpid():
        return held[1]
    with _spools_lock:
        held = _spools.get(key)
        if held is None or held[0] != os.getpid():
            interval = float(config.get("INGEST_SPOOL_SHIP_INTERVAL") or SHIP_INTERVAL)
            directory = directory_for(config, url)
            try:
                spool: Spool | None = Spool(url, directory, interval).start()
            except OSError:
                log.exception("no ingest spool in %s: requests use Redis directly", directory)
                spool = None
            held = _spools[key] = (os.getpid(), spool)
    return held[1]


def close_all() -> None:
    """Ship and stop this process's spools (tests; atexit does it for a server)."""
    with _spools_lock:
        spools = [spool for pid, spool in _spools.values() if pid == os.getpid() and spool]
        _spools.clear()
    for spool in spools:
        spool.close()
