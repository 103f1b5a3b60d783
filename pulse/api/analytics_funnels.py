"""Funnel and retention reports as JSON (seed 002's funnel; cohorts by first-seen period).

Funnel: `GET .../funnel?step=/pricing&step=signup&step=/checkout/*` or seed 002's
`POST .../funnel` with a JSON body (`steps`, `conversion_window_hours`, `breakdown`,
and optionally the range, `filters` and `classification` that GET takes as query
arguments). Retention: `GET .../retention?period=week&periods=8`, following
`user_id` (visitor ids rotate daily, so they cannot show a return on another day).
Paths: `/api/v1/sites/<id>/...`, the team alias, and seed 002's `/api/v1/funnel`,
`/api/v1/retention` (site in `?site=`, or `project`/`site` in the POST body).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import request

from pulse.accounts.actor import Actor
from pulse.analytics import raw
from pulse.analytics.funnel import FunnelSpec, funnel, make_spec
from pulse.analytics.query import parse_query
from pulse.analytics.retention import DEFAULT_PERIODS, parse_retention, retention
from pulse.api import analytics_funnel_schemas as schemas
from pulse.api import bp
from pulse.api import serializers as out
from pulse.api.analytics import COMMON, ERRORS, SCOPE, _paths, _site
from pulse.api.routing import operation
from pulse.errors import ValidationFailed
from pulse.models import Site
from pulse.sites import service as sites

FUNNEL_PARAMS = [
    (
        "step",
        "string",
        "Repeat in order: /path, /blog/* (pageviews), signup or event:signup; "
        "append ;key=value to match a property",
    ),  # fmt: skip
    ("steps", "string", "Instead of step: a JSON array, or the steps separated by commas"),
    ("conversion_window_hours", "number", "Every step within this of the first (default 24)"),
    ("unit", "string", "visitor (daily id, default), session, or user (user_id, across days)"),
    ("breakdown", "string", "Split by a dimension (country, device, source ...) or prop.<key>"),
    ("limit", "integer", "Breakdown rows (default 10)"),
]
RETENTION_PARAMS = [
    (name, kind, text)
    if name != "period"
    else ("period", "string", "Cohort period: day or week (default week; alias cohort), or a range")
    for name, kind, text in COMMON
] + [("periods", "integer", f"How many periods up to now (default {DEFAULT_PERIODS})")]
BODY_ARGS = ("period", "range", "since", "until", "classification", "limit")


def _funnel_op(methods: tuple[str, ...], **extra: Any) -> Any:
    paths = _paths("/funnel", "/api/v1/funnel")
    return operation(
        bp,
        paths["rule"],
        aliases=paths["aliases"],
        methods=methods,
        summary="Funnel: ordered steps, per-step conversion and drop-off (seed 002)",
        tag="analytics",
        scope=SCOPE,
        response=schemas.FunnelOut,
        errors=ERRORS,
        **extra,
    )


def _answer(site: Site, args: Mapping[str, str], spec: FunnelSpec) -> dict[str, Any]:
    query = parse_query(site, args, first_seen=lambda: raw.first_event_at(site.id))
    return out.envelope({"query": query.describe(), **funnel(query, spec)})


def _arg_steps() -> list[Any]:
    steps: list[Any] = request.args.getlist("step")
    listed = request.args.get("steps")
    if not steps and listed:
        if listed.lstrip().startswith("["):
            try:
                steps = json.loads(listed)
            except ValueError as exc:
                raise ValidationFailed(errors={"steps": ["Not a JSON array."]}) from exc
        else:
            steps = [s.strip() for s in listed.split(",") if s.strip()]
    return steps


def _hours(raw: str | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError as exc:
        raise ValidationFailed(errors={"conversion_window_hours": ["A number of hours."]}) from exc


@_funnel_op(("GET",), params=COMMON + FUNNEL_PARAMS)
def analytics_funnel(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Units (daily visitors by default, sessions, or users by user_id) through ordered steps.

    Each step strictly after the previous one, all within the conversion window of
    the first; rates are 0-1 decimals. Humans only unless `classification` says otherwise.
    """
    site = _site(actor, site_id, team)
    window = request.args.get("conversion_window_hours") or request.args.get("window_hours")
    spec = make_spec(
        _arg_steps(),
        _hours(window),
        request.args.get("unit") or None,
        request.args.get("breakdown") or None,
    )
    return _answer(site, request.args, spec)


@_funnel_op(("POST",), body=schemas.FunnelIn, params=COMMON)
def analytics_funnel_post(
    actor: Actor, body: schemas.FunnelIn, site_id: int | None = None, team: str | None = None
):
    """Seed 002's POST /funnel: the same report, asked with a JSON body."""
    ident = body.project or body.site
    if site_id is None and ident:
        site = sites.find_site(actor, ident, SCOPE)
    else:
        site = _site(actor, site_id, team)
    spec = make_spec(
        schemas.step_dicts(body.steps), body.conversion_window_hours, body.unit, body.breakdown
    )
    args: dict[str, str] = dict(request.args.items())
    for name in BODY_ARGS:
        value = getattr(body, name)
        if value is not None:
            args[name] = str(value)
    args.update(body.filters or {})
    return _answer(site, args, spec)


_retention_paths = _paths("/retention", "/api/v1/retention")


@operation(
    bp,
    _retention_paths["rule"],
    aliases=_retention_paths["aliases"],
    summary="Retention: cohorts by first-seen day or week, returning users per period",
    tag="analytics",
    scope=SCOPE,
    response=schemas.CohortRetentionOut,
    errors=ERRORS,
    params=RETENTION_PARAMS,
)
def analytics_retention(actor: Actor, site_id: int | None = None, team: str | None = None):
    """Cohorts of users by the day or week of their first event in the range.

    Identity: `user_id` (set by identify or server-side senders). Visitor ids rotate
    daily, so they cannot follow anyone across days; events without a user_id are
    left out and counted in `unidentified_events`. `average_rates[0]` is 1.0.
    """
    site = _site(actor, site_id, team)
    query, grain = parse_retention(
        site, request.args, first_seen=lambda: raw.first_event_at(site.id)
    )
    return out.envelope({"query": query.describe(), **retention(query, grain)})
