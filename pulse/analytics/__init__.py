"""The read path: one query layer for the API, the dashboard and the MCP server.

`query.parse_query` turns request arguments into a `Query` (a site, a UTC range
computed in the site's time zone, filters, a classification); the functions in
`reports` take a Query and return plain dicts. Nothing here imports Flask.

The roll-up seam: every report reads through the `_events_*` / `_visits_*` helpers
in `reports` (raw `events` and `visits`, bounded by the site_id+ts and
site_id+started_at indexes). A roll-up table maintained by the ingest drainer can
answer the common cases (no property filter, day buckets) behind the same
signatures; the report functions and their callers do not change.
"""
