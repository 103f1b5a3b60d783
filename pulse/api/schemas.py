"""Request and response models of the JSON API; the OpenAPI document is built from these."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from pulse.models import ROLES, TIERS
from pulse.validation import checked_email, has_control_chars


def _no_control_chars(value: str) -> str:
    if has_control_chars(value):
        raise ValueError("must not contain control characters")
    return value


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(checked_email)]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=255), AfterValidator(_no_control_chars)
]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_no_control_chars),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Role = Literal["owner", "admin", "member", "marketing", "viewer"]
Tier = Literal["free", "starter", "pro", "agency", "enterprise"]
assert set(ROLES) == set(Role.__args__) and set(TIERS) == set(Tier.__args__)


class Input(BaseModel):
    """Request bodies: unknown fields are an error, so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Accounts ---------------------------------------------------------------------------


class SignUpIn(Input):
    email: Email
    password: Password
    name: Text = ""


class SignInIn(Input):
    email: Annotated[str, StringConstraints(max_length=254), AfterValidator(_no_control_chars)]
    password: Password


class UserOut(Output):
    id: int
    email: str
    name: str
    email_verified: bool = False
    created_at: datetime


class AccountOut(Output):
    user: UserOut | None
    teams: list[TeamOut]
    auth: Literal["session", "api_key"]
    api_key: ApiKeyOut | None = None


# Teams ------------------------------------------------------------------------------


class TeamSettings(Input):
    timezone: Text | None = None
    locale: Annotated[str, StringConstraints(max_length=16, pattern=r"^[A-Za-z_-]*$")] | None = None


class TeamIn(Input):
    name: Name
    slug: Annotated[str, StringConstraints(max_length=64)] | None = None
    tier: Tier = "free"


class TeamPatch(Input):
    name: Name | None = None
    slug: Annotated[str, StringConstraints(max_length=64)] | None = None
    tier: Tier | None = None
    settings: TeamSettings | None = None


class TeamOut(Output):
    id: int
    name: str
    slug: str
    tier: str
    settings: dict[str, Any]
    role: str | None = None
    created_at: datetime
    updated_at: datetime


class MemberIn(Input):
    email: Email
    role: Role = "viewer"


class MemberPatch(Input):
    role: Role


class MemberOut(Output):
    user_id: int
    email: str
    name: str
    role: str
    joined_at: datetime


class InvitationOut(Output):
    id: int
    email: str
    role: str
    expires_at: datetime
    invite_url: str | None = None


class MemberAdded(Output):
    status: Literal["added", "invited"]
    member: MemberOut | None = None
    invitation: InvitationOut | None = None


# Sites ------------------------------------------------------------------------------

Origin = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class SiteIn(Input):
    name: Name
    domain: Annotated[str, StringConstraints(strip_whitespace=True, max_length=253)] | None = None
    allowed_origins: Annotated[list[Origin], Field(max_length=50)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] = "UTC"
    team: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="Team slug or id (for /projects and keys of one team: optional)"
    )


class SitePatch(Input):
    name: Name | None = None
    domain: Annotated[str, StringConstraints(strip_whitespace=True, max_length=253)] | None = None
    allowed_origins: Annotated[list[Origin], Field(max_length=50)] | None = None
    timezone: Annotated[str, StringConstraints(max_length=64)] | None = None


class SiteOut(Output):
    id: int
    team: str = Field(description="The team's slug")
    name: str
    domain: str
    allowed_origins: list[str]
    site_key: str = Field(description="Public key for trackers (not a secret)")
    project_token: str = Field(description="Seed 002 name of site_key")
    timezone: str
    tracking_snippet: str
    created_at: datetime
    updated_at: datetime


# API keys ---------------------------------------------------------------------------


class ApiKeyIn(Input):
    name: Name
    scopes: (
        Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=50)]
        | None
    ) = None
    site_id: int | None = Field(default=None, ge=1, lt=2**31)
    expires_at: datetime | None = None
    rate_limit_tier: Tier | None = None
    team: Annotated[str, StringConstraints(max_length=64)] | None = None


class RotateIn(Input):
    grace_period_hours: int = Field(default=24, ge=0, le=720)


class ApiKeyOut(Output):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    site_id: int | None
    rate_limit_tier: str | None
    last_used_at: datetime | None
    expires_at: datetime | None
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret. Shown once; store it now.")


class ApiKeyRotated(Output):
    id: int
    name: str
    key: str
    scopes: list[str]
    previous_key_id: int
    grace_period_ends_at: datetime


# Audit log and health ---------------------------------------------------------------


class AuditLogOut(Output):
    id: int
    action: str
    actor_user_id: int | None
    actor_api_key_id: int | None
    target_type: str | None
    target_id: str | None
    details: dict[str, Any]
    created_at: datetime


class HealthOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    db: bool
    redis: bool | None
    jobs: Literal["rq", "in-process"]
    email: bool
    billing: bool
    observability: bool
    version: str
    timestamp: datetime


class RetentionOut(BaseModel):
    pruned: dict[str, int]


class Message(BaseModel):
    message: str


AccountOut.model_rebuild()
