"""Layer 5: rescore a verdict at session end from how the visitor behaved.

Behaviour moves an uncertain verdict either way; it never overturns a user agent that
named a known bot or agent (`verdict.declared`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from pulse.detection.scoring import Evidence, Identity, evidence
from pulse.detection.signals import count
from pulse.detection.verdict import Verdict, decide

_MAX_INTERVALS = 500
_MAX_INTERVAL_MS = 3_600_000.0  # a gap of more than an hour says nothing about rhythm


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def _intervals(raw: Any) -> list[float]:
    if not isinstance(raw, (list, tuple)):
        return []
    values = (_number(item) for item in raw[:_MAX_INTERVALS])
    return [value for value in values if value is not None and 0 < value <= _MAX_INTERVAL_MS]


def _click_rhythm(intervals: list[float]) -> Evidence | None:
    if len(intervals) < 4:
        return None
    mean = sum(intervals) / len(intervals)
    spread = math.sqrt(sum((x - mean) ** 2 for x in intervals) / len(intervals)) / mean
    if spread < 0.1:
        return evidence(
            "beh.regular_clicks", f"click intervals vary by only {spread:.0%}, like a script"
        )
    if spread > 0.35:
        return evidence(
            "beh.irregular_clicks", f"click intervals vary by {spread:.0%}, like a person"
        )
    return None


def behaviour_evidence(behaviour: Mapping[str, Any]) -> list[Evidence]:
    """Evidence from session counters; see scoring.WEIGHTS for the weights."""
    moves = count(behaviour.get("pointer_moves"))
    scrolls = count(behaviour.get("scrolls"))
    keys = count(behaviour.get("keypresses"))
    clicks = count(behaviour.get("clicks"))
    pageviews = count(behaviour.get("pageviews")) or 0
    engaged_ms = _number(behaviour.get("engaged_ms")) or 0.0
    duration_s = _number(behaviour.get("duration_s"))
    per_minute = _number(behaviour.get("pages_per_minute"))
    if per_minute is None and duration_s is not None and duration_s >= 1:
        per_minute = pageviews / (duration_s / 60.0)
    items: list[Evidence] = []
    if (moves or 0) >= 10 and ((scrolls or 0) >= 1 or (clicks or 0) >= 1):
        items.append(
            evidence(
                "beh.pointer_and_scroll",
                f"pointer moved {moves} times with {scrolls or 0} scrolls and {clicks or 0} clicks",
            )
        )
    if (keys or 0) >= 3:
        items.append(evidence("beh.keypresses", f"{keys} key presses"))
    if engaged_ms >= 15_000:
        items.append(evidence("beh.long_engagement", f"engaged for {engaged_ms / 1000:.0f} s"))
    rhythm = _click_rhythm(_intervals(behaviour.get("click_intervals_ms")))
    if rhythm is not None:
        items.append(rhythm)
    if pageviews >= 3 and moves == 0 and scrolls == 0 and not keys:
        items.append(
            evidence(
                "beh.no_input", f"{pageviews} pageviews without any pointer, scroll or key input"
            )
        )
    if per_minute is not None and per_minute >= 20 and pageviews >= 5:
        items.append(evidence("beh.fast_paging", f"{per_minute:.0f} pages a minute"))
    return items


def rescore(verdict: Verdict, behaviour: Mapping[str, Any] | None) -> Verdict:
    """The verdict updated with session behaviour (unchanged for declared bots and agents)."""
    if verdict.declared or not isinstance(behaviour, Mapping):
        return verdict
    items = behaviour_evidence(behaviour)
    if not items:
        return verdict
    earlier = (
        Identity(verdict.name, verdict.category, verdict.operator, 0) if verdict.category else None
    )
    updated = decide(
        items,
        client=verdict.client,
        declared=False,
        prefetch=verdict.prefetch,
        log_odds=verdict.log_odds,
        fallback=earlier,
    )
    return replace(updated, reasons=verdict.reasons + updated.reasons)
