"""Element clicks on a page (seed 000's `/elements`): which buttons and links people use.

pulse.js sends an `element_click` event with the clicked element's CSS selector,
tag, text and link (never a form field's value); this report groups them by selector
for one page, which the caller must name.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pulse.analytics import raw
from pulse.analytics.dimensions import dimension
from pulse.analytics.formatting import rate
from pulse.analytics.query import Filter, Query
from pulse.errors import ValidationFailed


def element_clicks(q: Query) -> dict[str, Any]:
    """The most clicked elements of the page filtered on, with their share of clicks."""
    pages = [f for f in q.filters if f.dimension.name == "page"]
    if not pages or not any(v is not None for v in pages[0].values):
        raise ValidationFailed(
            "Invalid query parameters.", errors={"page": ["Name the page, e.g. page=/pricing."]}
        )
    rows = raw.element_clicks(q, q.limit)
    every_click = replace(q, filters=(*q.filters, Filter(dimension("event"), ("element_click",))))
    total = raw.event_counts(every_click)[0]["events"]
    return {
        "page": pages[0].values[0] if len(pages[0].values) == 1 else list(pages[0].values),
        "total_clicks": total,
        "elements": [{**r, "share": rate(r["clicks"], total)} for r in rows],
    }
