"""The agents page: every AI agent and bot, what it read, when, and its trend.

Numbers come from `pulse.analytics.agents` (the `/agents` and `/agents/<name>` API
reports); this module only turns instants into the site's wall clock and series
into sparklines and charts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pulse.analytics import agents as agents_report
from pulse.dashboard.charts import MONTHS, bucket_label, line_chart, sparkline
from pulse.dashboard.panels import value_label
from pulse.dashboard.reporting import Report


def local_time(instant: str | None, report: Report) -> str | None:
    """A UTC ISO instant of a report as the site's wall clock: '2 Dec 14:05'."""
    if not instant:
        return None
    moment = datetime.fromisoformat(instant.replace("Z", "+00:00")).astimezone(report.query.tz)
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment:%H:%M}"


def _trend(report: Report, trend: dict[str, Any], interval: str) -> dict[str, Any]:
    values = [p["hits"] for p in trend["series"]]
    pct = trend["change_pct"]
    return {
        "path": sparkline(values),
        "title": ", ".join(
            f"{bucket_label(p['date'], interval)}: {p['hits']}" for p in trend["series"]
        ),
        "change": "new" if pct is None and trend["current"] else f"{pct:+.0f}%" if pct else "flat",
        "sentence": (
            "none before this period"
            if pct is None
            else f"{pct:+.0f}% against the previous period"
            if pct
            else "as many as in the previous period"
        ),
    }


def agent_list(report: Report) -> dict[str, Any]:
    """Every agent and bot in the range: hits, pages read, first and last seen, trend."""
    result = agents_report.agents(report.query)
    interval = result["interval"]
    rows = []
    for r in result["rows"]:
        name = value_label("agent", r["name"])
        rows.append(
            {
                "name": name,
                "kind": "AI agent" if r["label"] == "agent" else "Bot",
                "category": r["category"],
                "hits": r["hits"],
                "pageviews": r["pageviews"],
                "visitors": r["visitors"],
                "pages": r["pages"],
                "top_pages": r["top_pages"],
                "first_seen": local_time(r["first_seen"], report),
                "last_seen": local_time(r["last_seen"], report),
                "trend": _trend(report, r["trend"], interval),
                "url": report.url("dashboard.site_agents", agent=name),
            }
        )
    return {
        "agents": rows,
        "agents_seen": result["agents_seen"],
        "total_hits": result["total_hits"],
    }


def agent_detail(report: Report, name: str) -> dict[str, Any]:
    """One agent: every page it read with when, and its trend as a chart."""
    result = agents_report.agent(report.query, name)
    interval = result["interval"]
    series = result["trend"]["series"]
    chart = line_chart(
        [p["date"] for p in series], [p["hits"] for p in series], interval=interval, unit="hits"
    )
    pages = [
        {
            **p,
            "first_seen": local_time(p["first_seen"], report),
            "last_seen": local_time(p["last_seen"], report),
        }
        for p in result["pages_read"]
    ]
    return {
        "agent": result,
        "kind": "AI agent" if result["label"] == "agent" else "Bot",
        "first_seen": local_time(result["first_seen"], report),
        "last_seen": local_time(result["last_seen"], report),
        "trend": _trend(report, result["trend"], interval),
        "chart": chart,
        "interval": interval,
        "pages": pages,
    }
