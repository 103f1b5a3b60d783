"""Property-based tests: funnels and retention on random events, against their invariants
and against the brute-force reference in tests/funnel_reference.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from pulse.analytics.funnel import UNITS, funnel, make_spec
from pulse.analytics.query import parse_query
from pulse.analytics.retention import parse_retention, retention
from pulse.extensions import db
from pulse.models import Event
from tests import funnel_reference as ref
from tests.factories import make_tenant

BASE = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday
ZONES = ["UTC", "America/New_York", "Asia/Kathmandu", "Pacific/Auckland"]
STEPS = ["/", "/a", "/a/*", "/b*", "page_view", "signup", "signup;plan=pro", "buy"]

event = st.tuples(
    st.integers(0, 20 * 86400),  # seconds after BASE
    st.sampled_from([0, 0, 500_000, 999_999]),  # microseconds
    st.sampled_from(["pageview", "pageview", "signup", "buy"]),
    st.sampled_from(["/", "/a", "/a/x", "/b", "/B"]),
    st.integers(1, 4),  # visitor
    st.sampled_from([None, "", "u1", "u2", "u3", "u4"]),
    st.sampled_from(["human", "human", "agent", "bot"]),
    st.sampled_from([{}, {"plan": "pro"}, {"plan": "free"}]),
)
# Some events at the same instant as another: ties must never count as "after".
events_strategy = st.lists(event, min_size=0, max_size=40).flatmap(
    lambda rows: st.just(rows + [(r[0], r[1], "signup", *r[3:]) for r in rows[:3]])
)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def site(app):
    return make_tenant("props").site


def _load(site, rows, zone):
    db.session.execute(delete(Event).where(Event.site_id == site.id))
    site.timezone = zone
    data = []
    for n, (secs, micros, name, path, visitor, user, label, props) in enumerate(rows):
        ts = BASE + timedelta(seconds=secs, microseconds=micros)
        data.append(
            {
                "site_id": site.id,
                "event_uid": f"p{n}",
                "ts": ts,
                "name": name,
                "session_id": f"s{visitor}-{secs // 7200}",
                "visitor_id": visitor * 1000 + (ts.date() - BASE.date()).days,
                "user_id": user,
                "pathname": path,
                "label": label,
                "props": props,
            }
        )
    if data:
        db.session.execute(insert(Event), data)
    db.session.commit()
    return {"events": data, "visits": []}


@SETTINGS
@given(
    rows=events_strategy,
    zone=st.sampled_from(ZONES),
    steps=st.lists(st.sampled_from(STEPS), min_size=2, max_size=4),
    hours=st.sampled_from([0.02, 1, 6, 24, 24 * 7]),
    unit=st.sampled_from(UNITS),
    labels=st.sampled_from(["human", "all", "agent,bot"]),
)
def test_funnel_invariants_and_reference(site, rows, zone, steps, hours, unit, labels):
    data = _load(site, rows, zone)
    q = parse_query(site, {"since": "2024-03-04", "until": "2024-03-20", "classification": labels})
    spec = make_spec(steps, hours, unit)
    report = funnel(q, spec)
    counts = [s["count"] for s in report["steps"]]
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    for s in report["steps"]:
        assert 0.0 <= s["conversion_rate"] <= 1.0
        assert 0.0 <= s["conversion_rate_from_start"] <= 1.0
        assert s["drop_off"] >= 0
    first, last = counts[0], counts[-1]
    assert report["overall_conversion_rate"] == (round(last / first, 4) if first else 0.0)
    assert report["steps"][-1]["conversion_rate_from_start"] == report["overall_conversion_rate"]
    assert ref.shape(report) == ref.ref_funnel(q, spec, data)


@SETTINGS
@given(
    rows=events_strategy,
    zone=st.sampled_from(ZONES),
    grain=st.sampled_from(["day", "week"]),
    labels=st.sampled_from(["human", "all"]),
)
def test_retention_invariants_and_reference(site, rows, zone, grain, labels):
    data = _load(site, rows, zone)
    args = {"period": grain, "since": "2024-03-04", "until": "2024-03-24", "classification": labels}
    q, grain = parse_retention(site, args)
    report = retention(q, grain)
    assert report["average_rates"][0] == 1.0
    assert all(0.0 <= r <= 1.0 for r in report["average_rates"])
    chosen = [
        e
        for e in data["events"]
        if q.start <= e["ts"] < q.end and (q.labels is None or e["label"] in q.labels)
    ]
    users = {e["user_id"] for e in chosen if e["user_id"]}
    assert sum(c["size"] for c in report["cohorts"]) == report["users"] == len(users)
    assert report["unidentified_events"] == sum(1 for e in chosen if not e["user_id"])
    for c in report["cohorts"]:
        assert c["returning"][0] == c["size"]
        assert all(0 <= n <= c["size"] for n in c["returning"])
    expected = ref.ref_retention(q, grain, data)
    assert [
        {k: c[k] for k in ("cohort", "size", "returning", "rates")} for c in report["cohorts"]
    ] == (expected["cohorts"])
    assert report["average_rates"] == expected["average_rates"]
