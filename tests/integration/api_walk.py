"""Helpers to walk every registered API route with chosen path values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask

from pulse.api.routing import REGISTRY, Operation

# A body each model accepts, so a walk reaches the permission check and not a 422.
VALID_BODIES: dict[str, dict[str, Any]] = {
    "TeamIn": {"name": "Walked"},
    "TeamPatch": {"name": "Walked"},
    "MemberIn": {"email": "walker@example.test", "role": "viewer"},
    "MemberPatch": {"role": "viewer"},
    "SiteIn": {"name": "walked.example", "domain": "walked.example"},
    "SitePatch": {"name": "Walked"},
    "ApiKeyIn": {"name": "walked"},
    "RotateIn": {"grace_period_hours": 1},
    "SignUpIn": {"email": "walker2@example.test", "password": "correct horse battery"},
    "SignInIn": {"email": "walker2@example.test", "password": "correct horse battery"},
    "TrackEvent": {"name": "pageview", "url": "https://walked.example/"},
    "Batch": {"events": [{"name": "pageview", "url": "https://walked.example/"}]},
    "QueryIn": {"metrics": ["visitors"]},
    "FunnelIn": {"steps": ["/", "/pricing"]},
}


def analytics_values(tenant: Any) -> dict[str, Any]:
    """Path values of the analytics routes: one stored visit, and an agent's name."""
    from pulse.extensions import db
    from pulse.models import Visit, utcnow

    visit_id = f"walk-{tenant.team.slug}"
    now = utcnow()
    db.session.add(
        Visit(id=visit_id, site_id=tenant.site.id, visitor_id=1, started_at=now, last_seen_at=now)
    )
    db.session.commit()
    return {"session_id": visit_id, "name": "GPTBot"}


@dataclass
class Route:
    rule: str
    method: str
    arguments: frozenset[str]
    op: Operation

    def path(self, values: dict[str, Any]) -> str:
        path = self.rule
        for name in self.arguments:
            if name not in values:
                raise AssertionError(f"the walk has no value for <{name}> in {self.rule}")
            path = path.replace(f"<id:{name}>", str(values[name])).replace(
                f"<{name}>", str(values[name])
            )
        return path

    def valid_body(self) -> dict[str, Any] | None:
        if self.op.body_doc is None:
            return None
        return VALID_BODIES[self.op.body_doc.__name__]


def api_routes(app: Flask, prefix: str | tuple[str, ...] = "/api/") -> list[Route]:
    """Every (rule, method) under the prefix, with the operation that serves it."""
    by_name = {op.name: op for op in REGISTRY}
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefix) or rule.endpoint == "static":
            continue
        name = rule.endpoint.split(".", 1)[1].split("_alias")[0]
        op = by_name[name]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append(Route(rule.rule, method, frozenset(rule.arguments), op))
    # Deletions last, so the other calls still find their resources.
    return sorted(routes, key=lambda r: (r.method == "DELETE", r.rule, r.method))
