"""The data model, one module per aggregate; import from here."""

from pulse.models.api_key import ApiKey
from pulse.models.audit import AuditLog
from pulse.models.event import DailySalt, Event, Visit
from pulse.models.idempotency import IdempotencyRecord
from pulse.models.rollup import (
    RollupAgentPage,
    RollupDay,
    RollupHit,
    RollupItem,
    RollupJourney,
    RollupUser,
    RollupVisit,
)
from pulse.models.site import Site
from pulse.models.team import ROLES, TIERS, Invitation, Membership, Team
from pulse.models.types import utcnow
from pulse.models.user import User

__all__ = [
    "ROLES",
    "TIERS",
    "ApiKey",
    "AuditLog",
    "DailySalt",
    "Event",
    "IdempotencyRecord",
    "Invitation",
    "Membership",
    "RollupAgentPage",
    "RollupDay",
    "RollupHit",
    "RollupItem",
    "RollupJourney",
    "RollupUser",
    "RollupVisit",
    "Site",
    "Team",
    "User",
    "Visit",
    "utcnow",
]
