"""Writing the audit log."""

from __future__ import annotations

from typing import Any

from pulse.accounts.actor import Actor
from pulse.extensions import db
from pulse.models import AuditLog


def record(
    actor: Actor | None,
    action: str,
    *,
    team_id: int | None = None,
    target: Any = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add one audit entry to the current transaction."""
    entry = AuditLog(
        team_id=team_id,
        actor_user_id=actor.user.id if actor and actor.user else None,
        actor_api_key_id=actor.api_key.id if actor and actor.api_key else None,
        action=action,
        target_type=type(target).__name__.lower() if target is not None else None,
        target_id=str(getattr(target, "id", "")) or None if target is not None else None,
        details=details or {},
    )
    db.session.add(entry)
