"""Numbers as every report shows them: rates, comparisons, the per-label split."""

from __future__ import annotations

from typing import Any

from pulse.analytics.query import LABELS

PLURAL = {"human": "humans", "agent": "agents", "bot": "bots"}


def rate(part: float, whole: float) -> float:
    """A percentage with one decimal; 0 when there is nothing to divide."""
    return round(100 * part / whole, 1) if whole else 0.0


def split(row: dict[str, Any] | None, suffix: str = "visitors") -> dict[str, int]:
    """humans / agents / bots from a raw row's `<label>_<suffix>` counts (zeros without a row)."""
    return {PLURAL[label]: row[f"{label}_{suffix}"] if row else 0 for label in LABELS}


def with_share(counts: dict[str, int]) -> dict[str, Any]:
    """The split plus the agents' share of it, so any row shows how much is AI agents."""
    return {**counts, "agent_share": rate(counts["agents"], sum(counts.values()))}


def change(current: float, previous: float) -> dict[str, Any]:
    """Seed 002's comparison: current, previous, change and change_pct (None from zero)."""
    return {
        "current": current,
        "previous": previous,
        "change": round(current - previous, 2),
        "change_pct": round(100 * (current - previous) / previous, 1) if previous else None,
    }
