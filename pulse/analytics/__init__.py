"""The read path: one query layer for the API, the dashboard and the MCP server.

`query.parse_query` turns request arguments into a `Query` (a site, a UTC range
computed in the site's time zone, filters, a classification); report modules take a
Query and return plain dicts. Nothing here imports Flask.

Counts go through `raw.event_counts` / `raw.visit_counts`: whole UTC days with a fresh
daily roll-up (`rollups.py`, built by a periodic job) are read from the roll-up
tables (and the current day's hits up to a recent cut), the rest of the range from
the raw `events` and `visits`, and the parts are added. Reports of rows rather than
counts (explore.py's logs, funnel.py, agents.py's first/last seen, the stream's
replay) read the raw tables themselves.
"""
