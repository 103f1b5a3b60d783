"""Daily salts on the real database: created once per day, race-safe, purged after two days.

Runs on SQLite by default and on PostgreSQL with
`DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test`.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from pulse.extensions import db
from pulse.ingest import salts
from pulse.ingest.salts import clear_cache, purge_old_salts, salt_for, utc_today
from pulse.models import DailySalt

DAY = date(2026, 3, 14)


def stored() -> dict[date, bytes]:
    """Every salt in the table, read on a fresh connection."""
    with db.engine.connect() as conn:
        rows = conn.execute(select(DailySalt.day, DailySalt.salt)).all()
    return {day: bytes(salt) for day, salt in rows}


def test_salt_is_created_once_and_stored(app):
    salt = salt_for(DAY)
    assert isinstance(salt, bytes) and len(salt) == 32
    assert salt_for(DAY) == salt
    assert stored() == {DAY: salt}
    clear_cache()  # a restarted process reads the same salt back
    assert salt_for(DAY) == salt


def test_each_day_has_its_own_salt(app):
    assert salt_for(DAY) != salt_for(DAY + timedelta(days=1))
    assert len(stored()) == 2


def test_losing_the_insert_race_returns_the_winners_salt(app, monkeypatch):
    winner = b"w" * 32
    real_read = salts._read
    calls = []

    def read_missing_once(day: date) -> bytes | None:
        """Another process inserts between our read and our insert."""
        calls.append(day)
        if len(calls) == 1:
            with db.engine.begin() as conn:
                conn.execute(DailySalt.__table__.insert().values(day=day, salt=winner))
            return None
        return real_read(day)

    monkeypatch.setattr(salts, "_read", read_missing_once)
    assert salt_for(DAY) == winner
    assert stored() == {DAY: winner}


def test_concurrent_first_use_agrees_on_one_salt(app):
    results: list[bytes] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        with app.app_context():
            try:
                barrier.wait()
                results.append(salt_for(DAY))
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(results) == 6 and len(set(results)) == 1
    assert stored() == {DAY: results[0]}


def test_salt_for_never_commits_the_callers_session(app):
    db.session.execute(select(DailySalt)).all()  # the caller's session is in use
    db.session.add(DailySalt(day=DAY - timedelta(days=30), salt=b"p" * 32))
    if db.engine.dialect.name == "postgresql":
        db.session.flush()  # written but uncommitted (SQLite would hold its one write lock)
    salt_for(DAY)
    db.session.rollback()
    assert stored().keys() == {DAY}


def test_a_caller_holding_sqlites_write_lock_does_not_block_salt_for(app):
    """SQLite has one writer: the salt joins the caller's transaction instead of waiting."""
    db.session.add(DailySalt(day=DAY - timedelta(days=30), salt=b"p" * 32))
    db.session.flush()  # on SQLite the session now holds the write lock
    salt = salt_for(DAY)
    assert salt_for(DAY) == salt
    db.session.commit()
    assert stored() == {DAY - timedelta(days=30): b"p" * 32, DAY: salt}
    assert salt_for(DAY) == salt


def test_a_salt_made_in_a_rolled_back_transaction_is_not_kept(app):
    db.session.add(DailySalt(day=DAY - timedelta(days=30), salt=b"p" * 32))
    db.session.flush()
    first = salt_for(DAY)
    db.session.rollback()
    if db.engine.dialect.name == "postgresql":  # committed on its own connection at once
        assert stored() == {DAY: first} and salt_for(DAY) == first
        return
    assert stored() == {}  # it rode in the caller's transaction, and went with it
    second = salt_for(DAY)  # made afresh and stored: the rolled-back one was never cached
    assert second != first and stored() == {DAY: second}


def test_cache_keeps_only_today_and_yesterday(app):
    for offset in range(4):
        salt_for(DAY + timedelta(days=offset))
    assert sorted(app.extensions["pulse.salts"]) == [
        DAY + timedelta(days=2),
        DAY + timedelta(days=3),
    ]


def test_purge_keeps_today_and_yesterday(app):
    today = utc_today()
    days = [today - timedelta(days=n) for n in (0, 1, 2, 5)]
    kept = {day: salt_for(day) for day in days[:2]}
    for day in days[2:]:
        salt_for(day)
    assert purge_old_salts(today) == 2
    assert stored() == kept
    assert purge_old_salts(today) == 0
    assert set(app.extensions["pulse.salts"]) <= set(kept)
    assert salt_for(days[0]) == kept[days[0]]


def test_a_purged_day_gets_a_new_salt(app):
    today = utc_today()
    old_day = today - timedelta(days=3)
    old = salt_for(old_day)
    purge_old_salts(today)
    clear_cache()
    assert salt_for(old_day) != old  # old visitor ids can never be recomputed


@pytest.mark.parametrize("day", [date(2024, 2, 29), date(1999, 12, 31)])
def test_any_date_round_trips(app, day):
    salt = salt_for(day)
    assert stored() == {day: salt}
