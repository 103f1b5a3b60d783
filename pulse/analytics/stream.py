"""New events for live viewers (the SSE stream); `publish` is called by store.write."""

from __future__ import annotations

from typing import Any


def publish(rows: list[dict[str, Any]]) -> None:
    """Announce stored events to live viewers. Not built yet: does nothing."""
