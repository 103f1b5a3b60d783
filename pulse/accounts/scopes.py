"""API scopes, and the scopes each team role carries.

A role is a set of scopes, so one check (`Actor.require(team, scope)`) serves both
people signed in (by role) and programs (by the scopes of their API key).
"""

from __future__ import annotations

from collections.abc import Iterable

from pulse.errors import ValidationFailed

SCOPES: dict[str, str] = {
    "teams:read": "Read the team and its settings",
    "teams:write": "Rename the team, change its settings",
    "teams:delete": "Delete the team",
    "members:read": "List members and invitations",
    "members:write": "Invite, change roles, remove members",
    "sites:read": "List and read sites",
    "sites:write": "Create and update sites",
    "sites:delete": "Delete sites",
    "api-keys:read": "List API keys",
    "api-keys:write": "Create and rotate API keys",
    "api-keys:delete": "Revoke API keys",
    "stats:read": "Read analytics reports",
    "events:write": "Send events from a server",
    "leads:read": "Read captured leads",
    "leads:write": "Change leads",
    "webhooks:read": "List webhooks and deliveries",
    "webhooks:write": "Create, change and test webhooks",
    "webhooks:delete": "Delete webhooks",
    "audit:read": "Read the audit log",
}

# Seed 004 speaks of workspaces; its scopes are accepted and stored as team scopes.
SCOPE_ALIASES = {
    "workspaces:read": "teams:read",
    "workspaces:write": "teams:write",
    "workspaces:delete": "teams:delete",
}

READ_SCOPES = frozenset(s for s in SCOPES if s.endswith(":read"))
ALL_SCOPES = frozenset(SCOPES)

_VIEWER = frozenset({"teams:read", "members:read", "sites:read", "stats:read"})
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "owner": ALL_SCOPES,
    "admin": ALL_SCOPES - {"teams:delete"},
    "member": _VIEWER | {"sites:write", "events:write", "leads:read", "webhooks:read"},
    "marketing": _VIEWER | {"leads:read"},
    "viewer": _VIEWER,
}

# Who may give which role: only an owner makes owners.
ROLE_RANK = {"viewer": 0, "marketing": 1, "member": 2, "admin": 3, "owner": 4}


def normalise_scopes(scopes: Iterable[str]) -> list[str]:
    """Canonical, sorted, de-duplicated scopes; unknown names are a 422."""
    result: set[str] = set()
    unknown: list[str] = []
    for raw in scopes:
        scope = SCOPE_ALIASES.get(raw, raw)
        if scope == "read":
            result |= READ_SCOPES
        elif scope == "*":
            result |= ALL_SCOPES
        elif scope in SCOPES:
            result.add(scope)
        else:
            unknown.append(str(raw)[:64])
    if unknown:
        raise ValidationFailed(
            errors={"scopes": [f"Unknown scope: {name}" for name in unknown[:10]]}
        )
    return sorted(result)
