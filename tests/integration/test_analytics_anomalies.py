"""Anomalies: a weekly rhythm in the site's zone (across a DST change), planted spikes.

The seasonal baseline is computed again here in plain Python: buckets are local hours
found with zoneinfo, the same wall-clock hour of earlier weeks is looked up by its
local label, and median and MAD are taken of sorted lists.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from pulse.analytics import anomalies
from pulse.analytics.query import parse_query
from pulse.extensions import db
from pulse.models import Event
from tests import analytics_reference as ref
from tests.factories import bearer, make_key, make_tenant

ZONE = "America/New_York"
NOW = datetime(2024, 11, 6, 18, 0, tzinfo=UTC)  # the baseline weeks straddle Nov 3 (DST)
DAY = {"since": "2024-11-05T18:00:00Z", "until": "2024-11-06T18:00:00Z"}
SPIKE = datetime(2024, 11, 6, 10, 0)  # local wall-clock hours in New York (UTC-5)
DROP = datetime(2024, 11, 5, 14, 0)
AGENT_RUSH = datetime(2024, 11, 5, 16, 0)


def rhythm(local: datetime) -> int:
    """Busy office hours (sharp edges, so a one-hour slip would show), quiet nights."""
    busy = 9 <= local.hour < 17
    if local.weekday() >= 5:
        return 12 if busy else 3
    return 30 if busy else 3


def generate(
    site_id: int,
    *,
    weeks: int = 5,
    scale: float = 1.0,
    plants: dict[datetime, tuple[int, int]] | None = None,
) -> list[dict]:
    """Hourly traffic for `weeks` weeks before NOW; `plants`: (humans, agents) of local hours."""
    tz = ZoneInfo(ZONE)
    rng = random.Random(5)
    rows: list[dict] = []
    moment = NOW - timedelta(weeks=weeks)
    while moment < NOW:
        local = moment.astimezone(tz)
        humans = max(0, round(rhythm(local) * scale) + rng.randint(-2, 2))
        agents = round(humans * 0.1)
        planted = (plants or {}).get(local.replace(tzinfo=None, minute=0))
        if planted is not None:
            humans, agents = planted
        for n in range(humans + agents):
            rows.append(
                {
                    "site_id": site_id,
                    "event_uid": f"{moment.timestamp():.0f}-{n}",
                    "ts": moment + timedelta(seconds=rng.randrange(3600)),
                    "name": "pageview",
                    "session_id": f"s-{moment.timestamp():.0f}-{n}",
                    "visitor_id": rng.randrange(10**9),
                    "pathname": "/",
                    "label": "human" if n < humans else "agent",
                    "agent_name": None if n < humans else "ClaudeBot",
                    "props": {},
                }
            )
        moment += timedelta(hours=1)
    if rows:
        db.session.execute(insert(Event), rows)
    db.session.commit()
    return rows


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def reference(q, rows: list[dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    """(series of hits/expected/score, [(type, local hour)]) by the documented rules."""
    tz = q.tz
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    agent_hits: Counter[str] = Counter()
    for r in rows:
        label = ref.local_bucket(r["ts"], tz, "hour")
        totals[label] += 1
        if r["label"] == "human":
            hits[label] += 1
        if r["label"] == "agent":
            agent_hits[label] += 1
    first = min(r["ts"] for r in rows)
    first_hour = first.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    series, found = [], []
    for label in ref.expected_buckets(q, "hour"):
        start = datetime.fromisoformat(label)
        earlier = []
        for k in range(1, 5):
            wall = start.replace(tzinfo=None) - timedelta(days=7 * k)
            instant = wall.replace(tzinfo=tz)
            if instant.astimezone(UTC) >= first_hour.astimezone(UTC):
                earlier.append(ref.local_bucket(instant.astimezone(UTC), tz, "hour"))
        point = {"date": label, "hits": hits[label], "expected": None, "score": None}
        whole = q.start <= start and start + timedelta(hours=1) <= q.end
        if whole and len(earlier) >= 2:
            history = [float(hits[e]) for e in earlier]
            middle = _median(history)
            mad = _median([abs(h - middle) for h in history])
            spread = max(1.4826 * mad, max(1.0, math.sqrt(middle)))
            score = (hits[label] - middle) / spread
            point.update(expected=middle, score=round(score, 2))
            if abs(score) >= 3.5 and max(hits[label], middle) >= 10:
                found.append(("spike" if score > 0 else "drop", label))
            shares = [agent_hits[e] / totals[e] for e in earlier if totals[e] >= 10]
            if len(shares) >= 2 and totals[label] >= 10:
                usual = _median(shares)
                share_spread = max(1.4826 * _median([abs(s - usual) for s in shares]), 0.05)
                if (agent_hits[label] / totals[label] - usual) / share_spread >= 3.5:
                    found.append(("agent_share_spike", label))
        series.append(point)
    return series, found


def local_label(wall: datetime) -> str:
    return wall.replace(tzinfo=ZoneInfo(ZONE)).isoformat()


@pytest.fixture
def tenant(app):
    tenant = make_tenant("anomalies")
    tenant.site.timezone = ZONE
    db.session.commit()
    return tenant


def run(tenant, args=DAY):
    q = parse_query(tenant.site, args, now=NOW)
    result = anomalies.seasonal(q)
    series = [{k: p[k] for k in ("date", "hits", "expected", "score")} for p in result["series"]]
    found = sorted((a["type"], a["date"]) for a in result["anomalies"])
    return q, result, series, found


def test_planted_spike_drop_and_agent_rush_are_flagged_and_nothing_else(tenant):
    plants = {SPIKE: (120, 3), DROP: (0, 3), AGENT_RUSH: (30, 45)}
    rows = generate(tenant.site.id, plants=plants)
    q, result, series, found = run(tenant)
    expected_series, expected_found = reference(q, rows)
    assert series == expected_series
    assert found == sorted(expected_found)
    assert found == sorted(
        [
            ("agent_share_spike", local_label(AGENT_RUSH)),
            ("drop", local_label(DROP)),
            ("spike", local_label(SPIKE)),
        ]
    )
    spike = next(a for a in result["anomalies"] if a["type"] == "spike")
    assert spike["value"] == 120 and spike["expected"] == pytest.approx(30, abs=3)
    assert spike["severity"] == "critical" and spike["metric"] == "hits"


def test_a_normal_weekly_rhythm_is_not_flagged(tenant):
    rows = generate(tenant.site.id)
    q, result, series, found = run(tenant)
    assert found == [] and reference(q, rows) == (series, [])
    assert all(p["expected"] is not None for p in result["series"])
    # Daily buckets over a fortnight: weekdays against weekdays, weekends against weekends.
    fortnight = {"since": "2024-10-24", "until": "2024-11-05"}
    daily = anomalies.seasonal(parse_query(tenant.site, fortnight, now=NOW))
    assert daily["interval"] == "day" and daily["anomalies"] == []


def test_tiny_sites_do_not_flag_noise(tenant):
    rows = generate(tenant.site.id, scale=0.1, plants={SPIKE: (9, 0)})
    q, result, series, found = run(tenant)
    assert found == [] and reference(q, rows)[1] == []
    assert max(p["hits"] for p in result["series"]) == 9


def test_without_history_nothing_is_flagged(tenant):
    rows = generate(tenant.site.id, weeks=1, plants={SPIKE: (200, 0)})
    q, result, series, found = run(tenant)
    assert found == [] and all(p["expected"] is None for p in series)
    assert reference(q, rows) == (series, [])


def comparison(**metrics: tuple[float, float]) -> dict:
    out = {}
    for name, (current, previous) in metrics.items():
        pct = round(100 * (current - previous) / previous, 1) if previous else None
        out[name] = {"current": current, "previous": previous, "change": current - previous,
                     "change_pct": pct}  # fmt: skip
    return out


def test_seed_002_anomaly_flags_on_a_comparison():
    calm = comparison(bounce_rate=(40, 40), total_events=(100, 100), humans=(90, 90),
                      agents=(5, 5), bots=(5, 5))  # fmt: skip
    assert anomalies.flags({"metrics": calm, "unique_users": 10, "total_events": 100}) == []
    exactly_20 = comparison(bounce_rate=(48, 40))
    assert anomalies.flags({"metrics": exactly_20}) == []  # "exceeding +20%"
    stormy = comparison(bounce_rate=(50, 40), total_events=(40, 100), humans=(40, 90),
                        agents=(30, 5), bots=(5, 5))  # fmt: skip
    codes = [f["flag"] for f in anomalies.flags({"metrics": stormy, "unique_users": 0,
                                                  "total_events": 40})]  # fmt: skip
    assert codes == ["bounce_rate_spike", "zero_unique_users", "traffic_drop", "agent_share_spike"]
    rush = comparison(total_events=(300, 100))
    assert [f["flag"] for f in anomalies.flags({"metrics": rush})] == ["traffic_spike"]
    small = comparison(total_events=(1, 8))  # a drop from 8 events is not news
    assert anomalies.flags({"metrics": small}) == []


def test_insights_carry_the_flags(tenant):
    generate(tenant.site.id, plants={DROP: (0, 3)})
    q = parse_query(tenant.site, DAY, now=NOW, compare=True)
    result = anomalies.insights(q)
    assert "metrics" in result
    assert result["anomaly_flags"] == anomalies.flags(result)


def test_the_insights_endpoint_carries_the_flags(client, tenant):
    generate(tenant.site.id, plants={DROP: (0, 3)})
    path = f"/api/v1/insights?site={tenant.site.id}&{QS}"
    body = client.get(path, headers=bearer(tenant.key)).get_json()["data"]
    assert "metrics" in body and isinstance(body["anomaly_flags"], list)
    assert body["anomaly_flags"] == anomalies.flags(body)


# Over HTTP ---------------------------------------------------------------------------------

QS = "since=2024-11-05T18:00:00Z&until=2024-11-06T18:00:00Z"


def test_anomalies_endpoint_shape_aliases_and_errors(client, tenant):
    generate(tenant.site.id, plants={SPIKE: (120, 3)})
    site = tenant.site
    response = client.get(f"/api/v1/sites/{site.id}/anomalies?{QS}", headers=bearer(tenant.key))
    assert response.status_code == 200, response.get_json()
    data = response.get_json()["data"]
    assert set(data) == {"query", "interval", "baseline", "series", "anomalies", "anomaly_flags"}
    assert [a["date"] for a in data["anomalies"]] == [local_label(SPIKE)]
    assert data["baseline"]["method"] == "median_mad" and len(data["series"]) == 24
    seed = client.get(f"/analytics/anomalies?site={site.id}&{QS}", headers=bearer(tenant.key))
    assert seed.get_json() == response.get_json()
    other = make_tenant("outsider")
    assert (
        client.get(f"/api/v1/sites/{site.id}/anomalies", headers=bearer(other.key)).status_code
        == 404
    )
    no_stats = make_key(tenant.team, tenant.owner, ["sites:read"])
    assert (
        client.get(f"/api/v1/sites/{site.id}/anomalies", headers=bearer(no_stats)).status_code
        == 403
    )
    for bad, field in (("interval=week", "interval"), ("range=abc", "range")):
        bad_response = client.get(
            f"/api/v1/sites/{site.id}/anomalies?{bad}", headers=bearer(tenant.key)
        )
        assert bad_response.status_code == 422, bad
        assert field in bad_response.get_json()["errors"]
