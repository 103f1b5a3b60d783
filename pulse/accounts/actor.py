"""The principal behind a request: a signed-in user or an API key."""

from __future__ import annotations

from dataclasses import dataclass, field

from pulse.accounts.scopes import ROLE_SCOPES
from pulse.errors import Forbidden, NotFound
from pulse.models import ApiKey, Site, Team, User


@dataclass
class Actor:
    """Who is acting. Services take an Actor and check it before every read or write."""

    user: User | None = None
    api_key: ApiKey | None = None
    _roles: dict[int, str] | None = field(default=None, repr=False)

    @property
    def identity(self) -> str:
        """A stable key for rate limits and idempotency records."""
        if self.api_key is not None:
            return f"key:{self.api_key.id}"
        return f"user:{self.user.id if self.user else 0}"

    @property
    def user_id(self) -> int | None:
        if self.user is not None:
            return self.user.id
        return self.api_key.created_by_id if self.api_key else None

    def _roles_by_team(self) -> dict[int, str]:
        """The user's roles, loaded once per actor (one query)."""
        if self._roles is None:
            memberships = self.user.memberships if self.user is not None else []
            self._roles = {m.team_id: m.role for m in memberships}
        return self._roles

    def role_in(self, team_id: int) -> str | None:
        """The user's role in a team, or None."""
        return self._roles_by_team().get(team_id)

    def joined(self, team_id: int, role: str) -> None:
        """Record a membership made during this request (e.g. creating a team)."""
        self._roles_by_team()[team_id] = role

    def team_ids(self) -> list[int]:
        """Every team this actor may see."""
        if self.api_key is not None:
            return [self.api_key.team_id]
        return list(self._roles_by_team())

    def scopes_in(self, team_id: int) -> frozenset[str] | None:
        """The scopes this actor holds in the team; None when it has no access at all."""
        if self.api_key is not None:
            if self.api_key.team_id != team_id:
                return None
            return frozenset(self.api_key.scopes)
        role = self.role_in(team_id)
        return ROLE_SCOPES[role] if role else None

    def can(self, team: Team | int, scope: str) -> bool:
        team_id = team if isinstance(team, int) else team.id
        scopes = self.scopes_in(team_id)
        return scopes is not None and scope in scopes

    def require(self, team: Team | int, scope: str, *, missing: str = "Resource") -> None:
        """404 when the team is not the actor's (no existence leak), 403 without the scope."""
        team_id = team if isinstance(team, int) else team.id
        scopes = self.scopes_in(team_id)
        if scopes is None:
            raise NotFound(f"{missing} not found.")
        if scope not in scopes:
            if self.api_key is not None:
                message = f"Insufficient permissions. Required scope: {scope}"
            else:
                message = f"Your role does not allow this. Required permission: {scope}"
            raise Forbidden(message, extra={"required_scope": scope})

    def require_site(self, site: Site, scope: str) -> None:
        """Like `require`, and a key limited to one site sees no other."""
        if self.api_key is not None and self.api_key.site_id not in (None, site.id):
            raise NotFound("Site not found.")
        self.require(site.team_id, scope, missing="Site")
