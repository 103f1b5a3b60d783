"""The only place where tracking payload fields, types and size caps live.

Field names of the three seed documents are accepted as aliases (`event`,
`event_type`, `type` for the name; `properties`, `event_data` for props; `page_url`
for url; `timestamp` for ts), so each documented client works unchanged.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator

MAX_BATCH = 100
MAX_PROPS = 30
MAX_PROP_KEY = 64
MAX_PROP_VALUE = 500
MAX_SIGNALS = 40

Str64 = Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
MAX_URL = 2048
Url = Annotated[str, StringConstraints(max_length=MAX_URL)]
PropValue = Annotated[str, StringConstraints(max_length=MAX_PROP_VALUE)] | int | float | bool | None


def _check_props(value: dict[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if len(value) > MAX_PROPS:
        raise ValueError(f"at most {MAX_PROPS} properties")
    for key in value:
        if not key or len(key) > MAX_PROP_KEY:
            raise ValueError(f"property names are 1-{MAX_PROP_KEY} characters")
    return value


class Element(BaseModel):
    """The clicked element of an element-click event (seed 000)."""

    model_config = ConfigDict(extra="forbid")
    selector: Annotated[str, StringConstraints(max_length=255)] | None = None
    tag: Annotated[str, StringConstraints(max_length=32)] | None = None
    text: Annotated[str, StringConstraints(max_length=255)] | None = None
    href: Url | None = None


class TrackEvent(BaseModel):
    """One event as a client sends it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Str64 | None = Field(default=None, description="Client event id; retries are deduplicated")
    name: Annotated[str, StringConstraints(min_length=1, max_length=120)] = Field(
        default="pageview", validation_alias=AliasChoices("name", "event", "event_type", "type")
    )
    url: Url | None = Field(default=None, validation_alias=AliasChoices("url", "page_url", "page"))
    referrer: Url | None = None
    props: dict[str, PropValue] = Field(
        default_factory=dict, validation_alias=AliasChoices("props", "properties", "event_data")
    )
    ts: datetime | None = Field(default=None, validation_alias=AliasChoices("ts", "timestamp"))
    session_id: Str64 | None = None
    user_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    element: Element | None = None
    engaged_ms: int | None = Field(default=None, ge=0, le=86_400_000)
    scroll_depth: int | None = Field(default=None, ge=0, le=100)
    # Only servers holding an events:write key may speak for a visitor:
    ip: Annotated[str, StringConstraints(max_length=45)] | None = None
    user_agent: Annotated[str, StringConstraints(max_length=1024)] | None = None

    _props = field_validator("props", mode="after")(_check_props)

    @field_validator("ts", mode="before")
    @classmethod
    def _epoch(cls, value: Any) -> Any:
        """Milliseconds since the epoch (seed 001/002) or ISO 8601."""
        if isinstance(value, bool):
            raise ValueError("timestamp must be epoch milliseconds or ISO 8601")
        if isinstance(value, int | float):
            if not 0 < value < 10**14:
                raise ValueError("timestamp out of range")
            return datetime.fromtimestamp(value / 1000, UTC)
        return value


class Batch(BaseModel):
    """A batch: the key may sit on the batch or on each event (seed 002)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    site: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None,
        validation_alias=AliasChoices("site", "token", "site_key", "siteKey", "project"),
    )
    events: list[Any] = Field(max_length=MAX_BATCH)
    signals: dict[str, Any] | None = None
    behaviour: dict[str, Any] | None = None

    @field_validator("signals", "behaviour", mode="after")
    @classmethod
    def _small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) > MAX_SIGNALS:
            raise ValueError(f"at most {MAX_SIGNALS} keys")
        return value
