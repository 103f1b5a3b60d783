"""What each analytics panel shows: a report from `pulse.analytics`, shaped for a template.

No queries here: every number comes from `reports` or `breakdowns`, called with the
page's Query, so the dashboard and the JSON API count the same way.
"""

from __future__ import annotations

from typing import Any

from pulse.analytics import breakdowns, reports
from pulse.analytics.dimensions import dimension
from pulse.analytics.query import Query
from pulse.dashboard.charts import bucket_label, line_chart
from pulse.dashboard.reporting import Report, dimension_name

OVERVIEW = "dashboard.site_overview"
TABS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "pages": ("Pages", [("page", "Top pages"), ("entry_page", "Entry"), ("exit_page", "Exit")]),
    "sources": (
        "Sources",
        [
            ("channel", "Channels"),
            ("source", "Sources"),
            ("referrer", "Referrers"),
            ("utm_source", "UTM source"),
            ("utm_medium", "UTM medium"),
            ("utm_campaign", "UTM campaign"),
        ],
    ),
    "locations": ("Countries", [("country", "Countries")]),
    "devices": ("Devices", [("device", "Devices"), ("browser", "Browsers"), ("os", "OS")]),
}
PANELS = ("pages", "sources", "locations", "devices", "traffic")
EMPTY_LABELS = {"source": "Direct / none", "channel": "Direct / none", "referrer": "Direct / none"}


def value_label(dim: str, value: Any) -> str:
    """A row's value as shown: None reads as '(none)' or 'Direct / none'."""
    if value is None or value == "":
        return EMPTY_LABELS.get(dim, "(none)")
    return str(value)


def duration(seconds: float) -> str:
    """'45s', '3m 05s', '1h 02m'."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def share(counts: dict[str, float]) -> float:
    """The agents' percentage of all visitors (humans + agents + bots)."""
    whole = counts["humans"] + counts["agents"] + counts["bots"]
    return round(100 * counts["agents"] / whole, 1) if whole else 0.0


def rows_of(report: Report, dim: str, result: dict[str, Any], endpoint: str) -> list[dict]:
    """Breakdown rows with their bar width, their filter link and whether that filter is on."""
    rows = result["rows"]
    top = max((r["visitors"] for r in rows), default=0)
    second = "sessions" if dimension(dim).session_scoped else "pageviews"
    active = {f.dimension.name: f.values for f in report.query.filters}
    return [
        {
            "label": value_label(dim, r["value"]),
            "visitors": r["visitors"],
            "second": r.get(second, 0),
            "agent_share": r.get("agent_share", 0.0),
            "width": round(100 * r["visitors"] / top, 1) if top else 0,
            "url": report.filter_url(endpoint, dim, r["value"]),
            "active": r["value"] in active.get(dim, ()),
        }
        for r in rows
    ]


def breakdown_panel(report: Report, panel: str, tab: str | None) -> dict[str, Any]:
    """One tabbed panel: the chosen dimension's top values."""
    title, tabs = TABS[panel]
    chosen = tab if tab in dict(tabs) else tabs[0][0]
    result = breakdowns.breakdown(report.query, chosen)
    second = "Sessions" if dimension(chosen).session_scoped else "Pageviews"
    return {
        "panel": panel,
        "title": title,
        "tab": chosen,
        "tabs": [{"value": v, "label": label, "active": v == chosen} for v, label in tabs],
        "column": dimension_name(chosen),
        "second": second,
        "rows": rows_of(report, chosen, result, OVERVIEW),
    }


def _change(metric: dict[str, Any], *, points: bool, lower_is_better: bool) -> dict[str, Any]:
    """How a KPI moved: text, direction and tone (good / bad / flat)."""
    delta = metric["change"]
    if points:
        text = f"{delta:+.1f} pts" if delta else "no change"
    elif metric["change_pct"] is None:
        text = "new" if metric["current"] else "no change"
    else:
        text = f"{metric['change_pct']:+.1f}%" if metric["change_pct"] else "no change"
    direction = "up" if delta > 0 else "down" if delta < 0 else "flat"
    good = (delta < 0) if lower_is_better else (delta > 0)
    tone = "flat" if direction == "flat" else "good" if good else "bad"
    return {"text": text, "direction": direction, "tone": tone, "previous": metric["previous"]}


def kpis(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline cards with their change against the previous period."""
    m = result["metrics"]
    now = share({k: m[k]["current"] for k in ("humans", "agents", "bots")})
    before = share({k: m[k]["previous"] for k in ("humans", "agents", "bots")})
    agent_share = {"current": now, "previous": before, "change": round(now - before, 1)}
    agent_share["change_pct"] = None
    cards = [
        ("visitors", "Visitors", f"{m['visitors']['current']:,}", m["visitors"], False, False),
        ("pageviews", "Pageviews", f"{m['pageviews']['current']:,}", m["pageviews"], False, False),
        (
            "bounce_rate",
            "Bounce rate",
            f"{m['bounce_rate']['current']}%",
            m["bounce_rate"],
            True,
            True,
        ),
        (
            "visit_duration",
            "Visit duration",
            duration(m["visit_duration"]["current"]),
            m["visit_duration"],
            False,
            False,
        ),
        ("agent_share", "Agent share", f"{now}%", agent_share, True, False),
    ]
    return [
        {
            "key": key,
            "label": label,
            "value": shown,
            "raw": metric["current"],
            "change": _change(metric, points=points, lower_is_better=lower),
        }
        for key, label, shown, metric, points, lower in cards
    ]


def series_chart(q: Query, compare: bool, metric: str = "visitors") -> dict[str, Any]:
    """The time series of the range as a chart, with the previous period when comparing."""
    series = reports.timeseries(q)
    interval = series["interval"]
    points = series["points"]
    previous = None
    if compare:
        prior = reports.timeseries(q.previous(), interval)["points"]
        previous = [p[metric] for p in prior]
    chart = line_chart(
        [p["date"] for p in points],
        [p[metric] for p in points],
        interval=interval,
        unit=metric,
        previous=previous,
    )
    table = [
        {
            "label": bucket_label(p["date"], interval),
            "visitors": p["visitors"],
            "pageviews": p["pageviews"],
            "humans": p["humans"],
            "agents": p["agents"],
            "bots": p["bots"],
        }
        for p in points
    ]
    return {"chart": chart, "interval": interval, "table": table, "points": points}


def summary(report: Report) -> dict[str, Any]:
    """KPI cards and the chart."""
    result = reports.overview(report.with_query(compare=True))
    return {
        "overview": result,
        "kpis": kpis(result),
        **series_chart(report.query, report.compare),
    }


def traffic(report: Report) -> dict[str, Any]:
    """Humans, AI agents and bots side by side, and the busiest agents and bots."""
    result = reports.overview(report.query)
    total = result["humans"] + result["agents"] + result["bots"]
    classes = []
    for key, value, label in (
        ("humans", "human", "Humans"),
        ("agents", "agent", "AI agents"),
        ("bots", "bot", "Bots"),
    ):
        count = result[key]
        classes.append(
            {
                "label": label,
                "visitors": count,
                "pageviews": result["by_classification"][value]["pageviews"],
                "share": round(100 * count / total, 1) if total else 0.0,
                "url": report.url(OVERVIEW, classification=value),
                "active": report.classification == value,
            }
        )
    top = breakdowns.agents(report.with_query(labels=("agent", "bot")))
    rows = rows_of(report, "agent", top, OVERVIEW)
    for row in rows:  # an agent's rows are agents or bots, never humans
        row["url"] = report.url(OVERVIEW, agent=row["label"], classification="agent,bot")
    return {"classes": classes, "total": total, "agents": rows}


def realtime(report: Report) -> dict[str, Any]:
    """The last five minutes: visitors, sessions, the split, and the pages they are on."""
    now = reports.realtime(report.query)
    pages = rows_of(report, "page", {"rows": now["pages"]}, OVERVIEW)
    return {"now": now, "pages": pages}
