"""Server-rendered SVG charts: geometry in Python, markup in templates, no chart library.

A chart is a list of points in a fixed viewBox; the SVG scales to its container.
Every point carries a `title` (shown by the browser on hover and read by screen
readers) and a column rectangle that catches the pointer over the whole bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

WIDTH, HEIGHT = 720, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 12, 12, 28
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class Point:
    x: float
    y: float
    label: str
    value: float
    title: str
    column_x: float
    column_width: float
    previous_y: float | None = None


@dataclass
class Chart:
    """What the SVG template draws."""

    width: int
    height: int
    points: list[Point]
    line: str
    area: str
    previous_line: str | None
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    baseline: float
    empty: bool
    extra: dict[str, Any] = field(default_factory=dict)


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value` (min 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power  # pragma: no cover (the loop always returns)


def short_number(value: float) -> str:
    """12, 1.2k, 3.4M: compact axis labels."""
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    return f"{value:g}"


def bucket_label(raw: str, interval: str) -> str:
    """A bucket's local label as people read it: '14:00', '2 Dec', 'Dec 2026'."""
    try:
        if interval == "hour":
            return datetime.fromisoformat(raw).strftime("%H:%M")
        day = date.fromisoformat(raw[:10])
    except ValueError:
        return raw
    if interval == "month":
        return f"{MONTHS[day.month - 1]} {day.year}"
    return f"{day.day} {MONTHS[day.month - 1]}"


def _long_label(raw: str, interval: str) -> str:
    if interval == "hour":
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return raw
        return f"{moment.day} {MONTHS[moment.month - 1]} {moment:%H:%M}"
    if interval == "week":
        return f"Week of {bucket_label(raw, 'day')}"
    return bucket_label(raw, interval)


def line_chart(
    labels: list[str],
    values: list[float],
    *,
    interval: str,
    unit: str = "visitors",
    previous: list[float] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """A line with its area, an optional dashed previous period, axes and hover titles."""
    count = len(values)
    plot_w = width - PAD_LEFT - PAD_RIGHT
    plot_h = height - PAD_TOP - PAD_BOTTOM
    baseline = PAD_TOP + plot_h
    prior = list(previous or [])[:count]
    highest = max([*values, *prior, 4])
    # Counts: small scales in multiples of 4, so the five ticks are whole numbers.
    top = 4 * math.ceil(highest / 4) if highest <= 20 else nice_ceiling(highest)
    step = plot_w / count if count else plot_w

    def y_of(value: float) -> float:
        return round(baseline - plot_h * value / top, 1)

    points = []
    for i, (raw, value) in enumerate(zip(labels, values, strict=True)):
        x = round(PAD_LEFT + step * (i + 0.5), 1)
        title = f"{_long_label(raw, interval)}: {value:,.0f} {unit}"
        before = prior[i] if i < len(prior) else None
        if before is not None:
            title += f" (previous period: {before:,.0f})"
        points.append(
            Point(
                x=x,
                y=y_of(value),
                label=raw,
                value=value,
                title=title,
                column_x=round(PAD_LEFT + step * i, 1),
                column_width=round(step, 1),
                previous_y=y_of(before) if before is not None else None,
            )
        )
    line = " ".join(f"{'M' if i == 0 else 'L'}{p.x},{p.y}" for i, p in enumerate(points))
    area = ""
    if points:
        area = f"{line} L{points[-1].x},{baseline} L{points[0].x},{baseline} Z"
    previous_line = None
    shifted = [p for p in points if p.previous_y is not None]
    if shifted:
        previous_line = " ".join(
            f"{'M' if i == 0 else 'L'}{p.x},{p.previous_y}" for i, p in enumerate(shifted)
        )
    y_ticks = [(y_of(top * k / 4), short_number(top * k / 4)) for k in range(5)]
    every = max(1, math.ceil(count / 8))
    x_ticks = [(p.x, bucket_label(p.label, interval)) for p in points[::every]]
    return Chart(
        width=width,
        height=height,
        points=points,
        line=line,
        area=area,
        previous_line=previous_line,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        baseline=baseline,
        empty=not any(values),
    )


def sparkline(values: list[float], width: int = 120, height: int = 28) -> str:
    """The path of a small trend line (an empty string without points)."""
    if not values:
        return ""
    top = max(values) or 1
    step = width / max(1, len(values) - 1)
    coords = [
        (round(i * step, 1), round(height - 2 - (height - 4) * v / top, 1))
        for i, v in enumerate(values)
    ]
    return " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(coords))
