"""Traffic spikes and drops against a seasonal baseline, agent-share spikes, seed 002 flags.

Each bucket of the range (hours for ranges up to a week, days beyond) is compared
with the same bucket of the previous WEEKS weeks on the site's wall clock (the same
hour of the week, or the same weekday). The baseline is robust: its median, and a
spread of 1.4826 x the median absolute deviation, floored at the Poisson noise of
the median (sqrt) so a perfectly regular history does not flag every wobble. A
bucket is flagged when it is THRESHOLD spreads away and it, or its baseline, has at
least MIN_VOLUME hits, so tiny sites do not flag noise. Weeks before the site's
first event are not history: with fewer than MIN_HISTORY weeks nothing is flagged.
Only whole buckets are scored, so the hour in progress never looks like a drop.

The agent share (agent hits / all hits of the bucket, whatever the classification)
is compared the same way, with its spread floored at SHARE_FLOOR.

`flags` applies seed 002's "anomaly flags" to a period comparison (stats with
`metrics`), and `insights` is the insights report with them added.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import and_, func, or_, select

from pulse.analytics import raw
from pulse.analytics.buckets import Bucket, bucket_starts
from pulse.analytics.dimensions import EVENTS
from pulse.analytics.query import Query
from pulse.analytics.reports import overview, stats
from pulse.analytics.sql import bucket_key, events_where
from pulse.errors import ValidationFailed
from pulse.extensions import db

WEEKS = 4
MIN_VOLUME = 10
MIN_HISTORY = 2
THRESHOLD = 3.5
MAD_SCALE = 1.4826
SHARE_FLOOR = 0.05
HOURLY_UP_TO = timedelta(days=7)
# Seed 002's flags on a period comparison.
BOUNCE_SPIKE_PCT = 20.0
TRAFFIC_DROP_PCT = -50.0
TRAFFIC_SPIKE_PCT = 100.0
AGENT_SHARE_POINTS = 15.0


def robust_score(value: float, history: list[float], floor: float) -> tuple[float, float, float]:
    """(median, spread, score) of a value against its history (median/MAD, floored)."""
    middle = median(history)
    mad = median(abs(h - middle) for h in history)
    spread = max(MAD_SCALE * mad, floor)
    return middle, spread, (value - middle) / spread


def _interval(q: Query) -> str:
    if q.interval is None:
        return "hour" if q.end - q.start <= HOURLY_UP_TO else "day"
    if q.interval not in ("hour", "day"):
        raise ValidationFailed(
            "Invalid query parameters.", errors={"interval": ["Use hour or day for anomalies."]}
        )
    return q.interval


def _earlier_key(bucket: Bucket, q: Query, interval: str, weeks: int) -> int:
    """The key of the same wall-clock bucket `weeks` weeks before."""
    if interval == "day":
        return bucket.key - 7 * weeks
    local = bucket.start.astimezone(q.tz).replace(tzinfo=None) - timedelta(days=7 * weeks)
    return int(local.replace(tzinfo=q.tz).timestamp())


def _counts(q: Query, interval: str) -> dict[int, dict[str, int]]:
    """Hits per (bucket, label) over the range and the same spans of earlier weeks."""
    slack = timedelta(hours=1)  # a DST change moves the wall clock by an hour
    span = q.window(q.start - timedelta(days=7 * WEEKS) - slack, q.end)
    conditions = list(events_where(span))
    if q.end - q.start < timedelta(days=7):
        conditions.append(
            or_(
                *(
                    and_(
                        EVENTS.c.ts >= q.start - timedelta(days=7 * k) - slack,
                        EVENTS.c.ts < q.end - timedelta(days=7 * k) + slack,
                    )
                    for k in range(WEEKS + 1)
                )
            )
        )
    key = bucket_key(EVENTS.c.ts, span, interval).label("b")
    statement = (
        select(key, EVENTS.c.label, func.count()).where(*conditions).group_by(key, EVENTS.c.label)
    )
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for bucket, label, hits in db.session.execute(statement):
        counts[int(bucket)][label] += hits
    return counts


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _severity(score: float) -> str:
    return "critical" if abs(score) >= 2 * THRESHOLD else "warning"


def seasonal(q: Query) -> dict[str, Any]:
    """Per bucket: hits, expected (baseline median) and band; the anomalies found."""
    interval = _interval(q)
    counts = _counts(q, interval)
    first = raw.first_event_at(q.site_id)
    history_from = None
    if first is not None:
        history_from = bucket_starts(q.tz, first, first + timedelta(seconds=1), interval)[0].start
    series, found = [], []
    buckets = bucket_starts(q.tz, q.start, q.end, interval)
    size = timedelta(hours=1) if interval == "hour" else timedelta(days=1)

    def hits_of(key: int) -> tuple[int, int, int]:
        labels = counts.get(key, {})
        chosen = sum(v for k, v in labels.items() if q.labels is None or k in q.labels)
        return chosen, labels.get("agent", 0), sum(labels.values())

    for bucket in buckets:
        value, agents, total = hits_of(bucket.key)
        share = agents / total if total else 0.0
        history, shares = [], []
        for k in range(1, WEEKS + 1):
            earlier = _earlier_key(bucket, q, interval, k)
            start = bucket.start - timedelta(days=7 * k)
            if history_from is None or start < history_from:
                continue
            h, a, t = hits_of(earlier)
            history.append(float(h))
            if t >= MIN_VOLUME:
                shares.append(a / t)
        point: dict[str, Any] = {
            "date": bucket.label,
            "start": _iso(bucket.start),
            "hits": value,
            "expected": None,
            "lower": None,
            "upper": None,
            "score": None,
            "agent_share": round(100 * share, 1),
            "expected_agent_share": None,
        }
        end = bucket.start + size
        complete = bucket.start >= q.start and end <= q.end
        if complete and len(history) >= MIN_HISTORY:
            middle, spread, score = robust_score(
                value, history, max(1.0, math.sqrt(median(history)))
            )
            point.update(
                expected=middle,
                lower=round(max(0.0, middle - THRESHOLD * spread), 1),
                upper=round(middle + THRESHOLD * spread, 1),
                score=round(score, 2),
            )
            if abs(score) >= THRESHOLD and max(value, middle) >= MIN_VOLUME:
                kind = "spike" if score > 0 else "drop"
                found.append(_finding(kind, "hits", bucket, end, value, middle, score))
        if complete and len(shares) >= MIN_HISTORY and total >= MIN_VOLUME:
            middle, _, score = robust_score(share, shares, SHARE_FLOOR)
            point["expected_agent_share"] = round(100 * middle, 1)
            if score >= THRESHOLD:
                found.append(
                    _finding(
                        "agent_share_spike",
                        "agent_share",
                        bucket,
                        end,
                        round(100 * share, 1),
                        round(100 * middle, 1),
                        score,
                    )
                )
        series.append(point)
    return {
        "interval": interval,
        "baseline": {
            "method": "median_mad",
            "weeks": WEEKS,
            "threshold": THRESHOLD,
            "min_volume": MIN_VOLUME,
            "min_history": MIN_HISTORY,
        },
        "series": series,
        "anomalies": found,
    }


def _finding(
    kind: str,
    metric: str,
    bucket: Bucket,
    end: datetime,
    value: float,
    expected: float,
    score: float,
) -> dict[str, Any]:
    unit = "%" if metric == "agent_share" else " hits"
    return {
        "type": kind,
        "metric": metric,
        "date": bucket.label,
        "start": _iso(bucket.start),
        "end": _iso(end),
        "value": value,
        "expected": expected,
        "score": round(score, 2),
        "severity": _severity(score),
        "message": f"{metric.replace('_', ' ')} {value}{unit} against {expected}{unit} usually",
    }


def flags(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Seed 002's anomaly flags on a stats result with its `metrics` comparison."""
    found: list[dict[str, Any]] = []
    metrics = result.get("metrics") or {}

    def flag(code: str, metric: str, message: str, severity: str = "warning") -> None:
        found.append({"flag": code, "metric": metric, "severity": severity, "message": message})

    bounce = metrics.get("bounce_rate", {}).get("change_pct")
    if bounce is not None and bounce > BOUNCE_SPIKE_PCT:
        flag(
            "bounce_rate_spike",
            "bounce_rate",
            f"Bounce rate up {bounce}% on the previous period: a tracking or UX regression?",
        )
    if result.get("unique_users") == 0 and result.get("total_events", 0) > 0:
        flag(
            "zero_unique_users",
            "unique_users",
            "Events but no unique users: are visitors identified?",
        )
    events = metrics.get("total_events")
    if events and events["change_pct"] is not None:
        if events["change_pct"] <= TRAFFIC_DROP_PCT and events["previous"] >= MIN_VOLUME:
            flag(
                "traffic_drop",
                "total_events",
                f"Events down {-events['change_pct']}% on the previous period.",
                "critical",
            )
        elif events["change_pct"] >= TRAFFIC_SPIKE_PCT and events["current"] >= MIN_VOLUME:
            flag("traffic_spike", "total_events", f"Events up {events['change_pct']}%.")
    shares = []
    for side in ("current", "previous"):
        counts = [metrics.get(k, {}).get(side, 0) for k in ("humans", "agents", "bots")]
        shares.append((100 * counts[1] / sum(counts) if sum(counts) else 0.0, sum(counts)))
    (now, volume), (before, _) = shares
    if metrics and volume >= MIN_VOLUME and now - before >= AGENT_SHARE_POINTS:
        flag(
            "agent_share_spike",
            "agents",
            f"AI agents are {now:.1f}% of visitors, up from {before:.1f}%.",
        )
    return found


def insights(q: Query) -> dict[str, Any]:
    """The insights report (stats with the previous period) with seed 002's anomaly flags."""
    result = stats(q)
    result["anomaly_flags"] = flags(result)
    return result


def anomalies(q: Query) -> dict[str, Any]:
    """Seasonal anomalies of the range, and the seed 002 flags of its period comparison."""
    compared = overview(replace(q, compare=True))
    return {**seasonal(q), "anomaly_flags": flags(compared)}
