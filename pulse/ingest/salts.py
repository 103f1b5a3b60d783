"""The daily secret mixed into visitor ids: made on first use per UTC day, gone after two.

Every process of every host reads the same row, so a visitor has one id per day
wherever the hit lands. `purge_old_salts` (a periodic job) deletes salts older than
yesterday: yesterday's sessions can still be finished, and nobody, not even someone
with the database, can recompute an older visitor id.

Salts are read and written on their own short connection (`db.engine.begin()`), never
through the caller's session, so asking for a salt never commits the caller's work.
One exception, on SQLite only: when the caller's transaction already holds SQLite's
single write lock (it flushed a write, say an API key's last_used_at), a second
connection could only wait for it and time out. The new salt then rides in the
caller's transaction inside a SAVEPOINT, committed by the caller's own commit, and is
not cached until it is read back committed. PostgreSQL never takes that path.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from pulse.extensions import db
from pulse.models import DailySalt

SALT_BYTES = 32
KEEP_DAYS = 2  # today and yesterday
_EXTENSION = "pulse.salts"
_lock = threading.Lock()


def utc_today() -> date:
    """The UTC day that names the current salt."""
    return datetime.now(UTC).date()


def _cache() -> dict[date, bytes]:
    """This app's salts by day, in process memory (per app, so test apps never share)."""
    return current_app.extensions.setdefault(_EXTENSION, {})


def clear_cache() -> None:
    """Forget this process's cached salts (tests; the database keeps them)."""
    with _lock:
        _cache().clear()


def _read(day: date) -> bytes | None:
    """The stored salt of a day, if any."""
    with db.engine.connect() as conn:
        value = conn.execute(
            select(DailySalt.salt).where(DailySalt.day == day)
        ).scalar_one_or_none()
    return bytes(value) if value is not None else None


def _create(day: date) -> bytes:
    """Insert a fresh salt; if another process won the race, take the one it stored."""
    salt = secrets.token_bytes(SALT_BYTES)
    try:
        with db.engine.begin() as conn:
            conn.execute(insert(DailySalt).values(day=day, salt=salt))
    except IntegrityError:
        stored = _read(day)
        if stored is None:  # the winner's row vanished (purged meanwhile): not our race
            raise
        return stored
    return salt


def _caller_holds_sqlite_write_lock() -> bool:
    """True when the caller's session has an open SQLite write transaction."""
    if db.engine.dialect.name != "sqlite":
        return False
    session = db.session()
    if not session.in_transaction():
        return False
    dbapi = session.connection().connection.dbapi_connection
    return bool(getattr(dbapi, "in_transaction", False))


def _in_callers_transaction(day: date) -> bytes:
    """SQLite with the caller holding the write lock: read or insert on its connection."""
    session = db.session()
    conn = session.connection()
    query = select(DailySalt.salt).where(DailySalt.day == day)
    stored = conn.execute(query).scalar_one_or_none()
    if stored is not None:
        return bytes(stored)
    salt = secrets.token_bytes(SALT_BYTES)
    try:
        with session.begin_nested():
            conn.execute(insert(DailySalt).values(day=day, salt=salt))
    except IntegrityError:
        return bytes(conn.execute(query).scalar_one())
    return salt


def salt_for(day: date) -> bytes:
    """The 32-byte salt of a UTC day, created on first use; cached for today and yesterday."""
    cache = _cache()
    salt = cache.get(day)
    if salt is not None:
        return salt
    if _caller_holds_sqlite_write_lock():
        return _in_callers_transaction(day)  # not cached: the caller may yet roll back
    salt = _read(day) or _create(day)
    with _lock:
        cache[day] = salt
        for old in sorted(cache)[:-KEEP_DAYS]:
            del cache[old]
    return salt


def purge_old_salts(today: date) -> int:
    """Delete salts older than yesterday, so older visitor ids can never be recomputed."""
    cutoff = today - timedelta(days=KEEP_DAYS - 1)
    with db.engine.begin() as conn:
        deleted = conn.execute(delete(DailySalt).where(DailySalt.day < cutoff)).rowcount
    cache = _cache()
    with _lock:
        for day in [day for day in cache if day < cutoff]:
            del cache[day]
    return max(deleted or 0, 0)


# Backfilled events older than yesterday get a salt that lives only in this process:
# their visitor ids stay distinct per day, and nobody can recompute them later.
_BACKFILL_KEY = secrets.token_bytes(SALT_BYTES)


def salt_for_event(day: date, today: date) -> bytes:
    """The salt for an event of `day`: the stored daily salt, or a throwaway one for old days."""
    if day >= today - timedelta(days=1):
        return salt_for(day)
    return hmac.new(_BACKFILL_KEY, day.isoformat().encode(), hashlib.sha256).digest()
