"""Reading HTML form fields into plain values; problems are collected as a ValidationFailed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from werkzeug.datastructures import MultiDict

from pulse.errors import ValidationFailed
from pulse.validation import checked_email, has_control_chars

MAX_PASSWORD = 256


def initial(values: Mapping[str, Any] | None = None) -> MultiDict[str, Any]:
    """A form's starting values, shaped like `request.form` (lists become repeated fields)."""
    data: MultiDict[str, Any] = MultiDict()
    for name, value in (values or {}).items():
        if isinstance(value, list | tuple | set | frozenset):
            for item in value:
                data.add(name, item)
        elif value is not None:
            data.add(name, value)
    return data


class Fields:
    """One submitted form; each reader returns a clean value or records an error."""

    def __init__(self, data: MultiDict[str, str]) -> None:
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def error(self, name: str, message: str) -> None:
        """Record a problem with one field."""
        self.errors.setdefault(name, []).append(message)

    def check(self) -> None:
        """Raise the collected problems (422) if there are any."""
        if self.errors:
            raise ValidationFailed(errors=self.errors)

    def text(self, name: str, *, required: bool = False, max_length: int = 255) -> str:
        value = (self.data.get(name) or "").strip()
        if required and not value:
            self.error(name, "This field is required.")
        elif len(value) > max_length:
            self.error(name, f"Use at most {max_length} characters.")
        elif has_control_chars(value):
            self.error(name, "Control characters are not allowed.")
        return value

    def password(self, name: str) -> str:
        value = self.data.get(name) or ""
        if not value:
            self.error(name, "This field is required.")
        elif len(value) > MAX_PASSWORD:
            self.error(name, f"Use at most {MAX_PASSWORD} characters.")
        return value

    def email(self, name: str) -> str:
        value = self.text(name, required=True, max_length=254)
        if name in self.errors:
            return value
        try:
            return checked_email(value)
        except ValueError as exc:
            self.error(name, str(exc))
        return value.lower()

    def choice(self, name: str, choices: Iterable[str], default: str | None = None) -> str | None:
        value = self.data.get(name) or default
        allowed = list(choices)
        if value not in allowed:
            self.error(name, "Choose one of the options.")
            return default
        return value

    def choices(self, name: str, choices: Iterable[str]) -> list[str]:
        allowed = set(choices)
        values = [v for v in self.data.getlist(name) if v]
        unknown = [v for v in values if v not in allowed]
        if unknown:
            self.error(name, "Not available: " + ", ".join(v[:64] for v in unknown[:5]))
        return sorted({v for v in values if v in allowed})

    def integer(self, name: str, *, minimum: int, maximum: int, default: int) -> int:
        raw = (self.data.get(name) or "").strip()
        if not raw:
            return default
        if not raw.isdigit() or not minimum <= int(raw) <= maximum:
            self.error(name, f"Give a whole number from {minimum} to {maximum}.")
            return default
        return int(raw)

    def optional_id(self, name: str) -> int | None:
        raw = (self.data.get(name) or "").strip()
        if not raw:
            return None
        if not raw.isdigit() or len(raw) > 10:
            self.error(name, "Choose one of the options.")
            return None
        return int(raw)

    def end_of_day(self, name: str) -> datetime | None:
        """A `YYYY-MM-DD` date field as the end of that day in UTC (None when empty)."""
        raw = (self.data.get(name) or "").strip()
        if not raw:
            return None
        try:
            day = date.fromisoformat(raw) + timedelta(days=1)
        except (ValueError, OverflowError):
            self.error(name, "Give a date as YYYY-MM-DD.")
            return None
        return datetime.combine(day, time.min, tzinfo=UTC)

    def lines(self, name: str, *, max_lines: int = 50, max_length: int = 255) -> list[str]:
        """One value per line; blank lines are dropped."""
        values = [line.strip() for line in (self.data.get(name) or "").splitlines()]
        values = [v for v in values if v]
        if len(values) > max_lines:
            self.error(name, f"At most {max_lines} lines.")
        elif any(len(v) > max_length for v in values):
            self.error(name, f"Each line may have at most {max_length} characters.")
        return values
