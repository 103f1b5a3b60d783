"""List conventions of seed 004: page/per_page, sort, created_after/before, fields."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import request
from sqlalchemy import Select, func, select

from pulse.errors import BadRequest
from pulse.extensions import db

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25


@dataclass(frozen=True)
class ListParams:
    page: int
    per_page: int
    sort: tuple[tuple[str, bool], ...]
    created_after: datetime | None
    created_before: datetime | None


def _positive_int(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        raise BadRequest(
            f"{name} must be a positive whole number.",
            code="invalid_parameter",
            errors={name: ["Must be a positive whole number."]},
        )
    return int(raw)


def parse_datetime(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as exc:
        raise BadRequest(
            f"{name} must be an ISO 8601 date or time.",
            code="invalid_parameter",
            errors={name: ["Must be an ISO 8601 date or time, e.g. 2026-01-15T10:30:00Z."]},
        ) from exc
    return value


def list_params(sortable: Sequence[str], default_sort: str = "id") -> ListParams:
    """Read and check the list parameters of the current request."""
    sort: list[tuple[str, bool]] = []
    for part in (request.args.get("sort") or default_sort).split(","):
        part = part.strip()
        field = part.lstrip("-")
        if field not in sortable:
            raise BadRequest(
                f"Cannot sort by {field[:50]!r}.",
                code="invalid_sort",
                errors={"sort": [f"Sortable fields: {', '.join(sortable)}"]},
            )
        sort.append((field, part.startswith("-")))
    return ListParams(
        page=_positive_int("page", 1),
        per_page=min(_positive_int("per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE),
        sort=tuple(sort),
        created_after=parse_datetime("created_after"),
        created_before=parse_datetime("created_before"),
    )


def _page_url(page: int) -> str:
    args = request.args.to_dict()
    args["page"] = str(page)
    return f"{request.base_url}?{urlencode(args)}"


def paginate(
    query: Select,
    model: Any,
    params: ListParams,
    serialize: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of `query` in the seed's `{data, meta, links}` shape."""
    if params.created_after is not None:
        query = query.where(model.created_at >= params.created_after)
    if params.created_before is not None:
        query = query.where(model.created_at <= params.created_before)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    order = [
        getattr(model, f).desc() if desc else getattr(model, f).asc() for f, desc in params.sort
    ]
    if all(f != "id" for f, _ in params.sort):
        order.append(model.id.asc())
    offset = (params.page - 1) * params.per_page
    rows = db.session.scalars(query.order_by(*order).offset(offset).limit(params.per_page))
    data = [serialize(row) for row in rows]
    total = total or 0
    last_page = max(1, -(-total // params.per_page))
    return {
        "data": data,
        "meta": {
            "current_page": params.page,
            "from": offset + 1 if data else None,
            "last_page": last_page,
            "per_page": params.per_page,
            "to": offset + len(data) if data else None,
            "total": total,
        },
        "links": {
            "first": _page_url(1),
            "last": _page_url(last_page),
            "prev": _page_url(params.page - 1) if params.page > 1 else None,
            "next": _page_url(params.page + 1) if params.page < last_page else None,
        },
    }


def select_fields(payload: dict[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    """Apply `?fields=a,b` to the `data` of an envelope (an object or a list of them)."""
    raw = request.args.get("fields")
    if not raw or "data" not in payload:
        return payload
    wanted = [f.strip() for f in raw.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in allowed]
    if unknown:
        raise BadRequest(
            "Unknown field in fields: " + ", ".join(u[:50] for u in unknown[:5]),
            code="invalid_fields",
            errors={"fields": [f"Selectable fields: {', '.join(allowed)}"]},
        )
    data = payload["data"]
    if isinstance(data, list):
        payload["data"] = [{k: item.get(k) for k in wanted} for item in data]
    elif isinstance(data, dict):
        payload["data"] = {k: data.get(k) for k in wanted}
    return payload
